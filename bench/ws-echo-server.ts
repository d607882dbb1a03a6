/**
 * The far end of the bench's WebSocket round trip (`--only limits`): a `ws` server on a free
 * loopback port that sends every message straight back. Run as a process of its own, so that the
 * round trip crosses two processes as a foreman-to-worker message does; prints its port on stdout.
 */
import { WebSocketServer } from 'ws';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
server.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
server.on('listening', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
