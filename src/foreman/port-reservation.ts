/**
 * The foreman's port, taken before anything else happens: a foreman that cannot listen must not
 * have created its database file or written the local credentials file first (a second try with
 * other settings would then meet a database set up for the first). The listening socket is
 * handed to the HTTP server once its routes are in place, so nobody can take the port between.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';

/** A bound, listening socket waiting for the foreman's HTTP server. @internal */
export class PortReservation {
  private readonly server: Server;
  private served = false;

  private constructor(server: Server) {
    this.server = server;
  }

  /**
   * Bind `host:port` now. A port in use or not allowed is refused with a one-line error that
   * names it and what to do.
   */
  static async take(port: number, host: string): Promise<PortReservation> {
    // A connection that arrives before the HTTP server takes over is closed at once, as a port
    // nobody listened on would refuse it: the caller tries again (never left hanging).
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(portProblem(err, port, host))));
      server.listen({ port, host }, () => resolve());
    });
    return new PortReservation(server);
  }

  /** The port bound (the one the system chose, when asked for port 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * The listening socket's handle, for `server.listen({ handle })` (Node takes a server's
   * `_handle` as it does in `server.listen(handle)`).
   */
  handle(): object {
    return (this.server as unknown as { _handle: object })._handle;
  }

  /** The HTTP server listens on the handle: closing it is the HTTP server's from now on. */
  handedOver(): void {
    this.served = true;
  }

  /** Let the port go, unless an HTTP server serves it. Safe to call twice. */
  release(): void {
    if (this.served || !this.server.listening) return;
    this.server.close();
  }
}

/** What went wrong binding the port, and the way out. */
function portProblem(err: NodeJS.ErrnoException, port: number, host: string): string {
  const where = `port ${port} on ${host}`;
  if (err.code === 'EADDRINUSE') {
    return `${where} is already in use by another program: stop what holds it (\`ss -ltnp 'sport = :${port}'\` names it), `
      + `or choose another port with --port <n> (--port 0 takes any free port)`;
  }
  if (err.code === 'EACCES') return `${where} needs privileges this user lacks: choose a port above 1023 with --port <n>`;
  if (err.code === 'EADDRNOTAVAIL') return `${host} is not an address of this machine: choose one it has with --host (0.0.0.0 for all)`;
  return `cannot listen on ${where}: ${err.message}`;
}
