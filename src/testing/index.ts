/**
 * Helpers for testing code that uses CrowdCompute, and for CrowdCompute's own tests:
 * a foreman on a free port with a fresh SQLite file, workers and foremen as child processes,
 * a raw protocol socket, a TCP proxy that can freeze, and `waitFor`, which retries an
 * assertion until a deadline instead of sleeping for a fixed time.
 * @packageDocumentation
 */
/// <reference types="node" preserve="true" />
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startForeman, type Foreman, type ForemanOptions } from '../foreman/index.ts';
import { helloSigningText, parseCredential } from '../protocol/index.ts';
import { localCredentialsAt } from '../host/local-credentials.ts';

/** A foreman started for a test, with its directory and a `cleanup()` that stops it and removes the directory. */
export interface TestForeman extends Foreman {
  /** Directory holding the SQLite file; removed by `cleanup()`. */
  dir: string;
  databaseUrl: string;
  cleanup(): Promise<void>;
  /** `fetch` on this foreman's URL with its admin API key. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** A foreman on 127.0.0.1 and a free port, on a fresh SQLite file in its own temp dir. */
export async function startTestForeman(options: ForemanOptions & { dir?: string } = {}): Promise<TestForeman> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'cc-test-'));
  const databaseUrl = options.database ?? `sqlite:${join(dir, 'crowdcompute.db')}`;
  const foreman = await startForeman({ port: 0, host: '127.0.0.1', logLevel: process.env.CC_TEST_LOG ?? 'silent', ...options, database: databaseUrl }) as TestForeman;
  foreman.dir = dir;
  foreman.databaseUrl = databaseUrl;
  foreman.fetch = (path, init = {}) => {
    const key = foreman.credentials?.apiKey;
    return fetch(`${foreman.url}${path}`, { ...init, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.headers as Record<string, string> | undefined) } });
  };
  foreman.cleanup = async () => {
    await foreman.stop();
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
  };
  return foreman;
}

/**
 * Retry `check` until it returns without throwing (and, if it returns a value, a truthy one),
 * or fail with its last error at the deadline.
 */
export async function waitFor<T>(check: () => T | Promise<T>, options: { timeoutMs?: number; intervalMs?: number; message?: string } = {}): Promise<Exclude<T, null | false>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown = null;
  for (;;) {
    try {
      const v = await check();
      // undefined means "no exception, done" (assertion style); false or null mean "not yet".
      if (v !== false && v !== null) return v as Exclude<T, null | false>;
      lastError = new Error(`condition returned ${String(v)}`);
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? lastError.message : String(lastError);
      throw new Error(`${options.message ?? 'waitFor'}: not true within ${options.timeoutMs ?? 10_000} ms: ${why}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
  }
}

const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

/**
 * Tests keep their foremen's local credentials (the admin key and worker token a foreman
 * leaves for its machine) out of the user's config directory: this process and the workers
 * and foremen it starts share a temporary one, unless CROWDCOMPUTE_CONFIG_DIR is set.
 */
process.env.CROWDCOMPUTE_CONFIG_DIR ??= mkdtempSync(join(tmpdir(), 'cc-credentials-'));

/** A CrowdCompute process started by a test. */
export interface ChildWorker {
  child: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Run `crowdcompute worker ...` as a child process (the same CLI a user runs). */
export function spawnWorkerProcess(args: string[], env: Record<string, string> = {}): ChildWorker {
  const child = spawn(process.execPath, [BIN, 'worker', '--no-status', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => out, exited, kill: (signal = 'SIGTERM') => { if (child.exitCode === null && child.signalCode === null) child.kill(signal); } };
}

/**
 * A raw protocol connection for tests: send any text, await messages matching a predicate.
 * It opens with the API key, and signs the hellos it sends with the worker token, that a
 * foreman on this machine left for its URL (or those given; null for none).
 */
export class RawSocket {
  private readonly ws: WebSocket;
  /** Every message received and not yet taken by `next`. */
  readonly received: any[] = [];
  /** Resolves with the close code once the connection closes. */
  readonly closed: Promise<number>;
  private waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];

  private readonly token: string | null;
  private readonly host: string;

  private constructor(ws: WebSocket, token: string | null, host: string) {
    this.ws = ws;
    this.token = token;
    this.host = host;
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('message', (data) => {
      const v = JSON.parse(data.toString());
      for (const m of Array.isArray(v) ? v : [v]) {
        this.received.push(m);
        const i = this.waiters.findIndex((w) => w.pred(m));
        if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      }
    });
  }

  /** Connect to a foreman's /ws. */
  static async open(url: string, credentials: { apiKey?: string | null; token?: string | null } = {}): Promise<RawSocket> {
    const local = localCredentialsAt(url);
    const apiKey = credentials.apiKey === undefined ? local?.apiKey : credentials.apiKey;
    const token = credentials.token === undefined ? local?.workerToken ?? null : credentials.token;
    const ws = new WebSocket(url, apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {});
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    return new RawSocket(ws, token, new URL(url).host);
  }

  /** True while the connection is open. */
  get isOpen(): boolean { return this.ws.readyState === WebSocket.OPEN; }

  /** Send a message (an object, sent as JSON; a hello without `auth` is signed) or any text. */
  send(message: unknown): void {
    const sign = (m: unknown): unknown => {
      const h = m as { type?: string; workerId?: string; auth?: unknown } | null;
      return this.token && h && h.type === 'hello' && h.auth === undefined && typeof h.workerId === 'string'
        ? { ...h, auth: signHello(this.token, h.workerId, this.host) } : m;
    };
    const signed = Array.isArray(message) ? message.map(sign) : sign(message);
    this.ws.send(typeof signed === 'string' ? signed : JSON.stringify(signed));
  }

  /** The first message (already received or still to come) that matches. */
  next(pred: (m: any) => boolean, timeoutMs = 5_000): Promise<any> {
    const seen = this.received.find(pred);
    if (seen) { this.received.splice(this.received.indexOf(seen), 1); return Promise.resolve(seen); }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.received).slice(0, 500)}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (m) => { clearTimeout(t); this.received.splice(this.received.indexOf(m), 1); resolve(m); } });
    });
  }

  /** Close the connection. */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => { this.ws.once('close', () => resolve()); this.ws.close(); });
  }
}

/** A free TCP port on 127.0.0.1 (for processes that must be restarted on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

/** A foreman process started by a test. */
export interface ChildForeman extends ChildWorker {
  url: string;
  wsUrl: string;
}

/** Run `crowdcompute foreman ...` as a child process on 127.0.0.1:`port`; resolves once /health answers. */
export async function spawnForemanProcess(port: number, args: string[], env: Record<string, string> = {}): Promise<ChildForeman> {
  const child = spawn(process.execPath, [BIN, 'foreman', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = `http://127.0.0.1:${port}`;
  let dead = false;
  void exited.then(() => { dead = true; });
  try {
    await waitFor(async () => {
      if (dead) throw new Error(`foreman exited: ${out.slice(-2000)}`);
      return (await fetch(`${url}/health`)).ok;
    }, { timeoutMs: 20_000, message: 'foreman process answers /health' });
  } catch (err) {
    // A foreman that did not come up in time is not left running behind the failed test.
    if (!dead) child.kill('SIGKILL');
    throw err;
  }
  return { child, url, wsUrl: `ws://127.0.0.1:${port}/ws`, output: () => out, exited,
    kill: (signal = 'SIGTERM') => { if (child.exitCode === null && child.signalCode === null) child.kill(signal); } };
}

/**
 * A TCP proxy that can freeze: stop forwarding in both directions without closing anything,
 * as a network that silently drops packets does (no FIN, no WebSocket close frame); or cut:
 * reset every connection and refuse new ones, as a server that went down does, until restored.
 */
export class FreezableProxy {
  readonly port: number;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private frozen = false;

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  /** A proxy to 127.0.0.1:`targetPort`, on a free port. */
  static async start(targetPort: number): Promise<FreezableProxy> {
    const sockets = new Set<Socket>();
    let proxy!: FreezableProxy;
    const server = createServer((client) => {
      if (proxy.frozen) { client.destroy(); return; }
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)); }
      client.on('data', (d) => { if (!proxy.frozen) upstream.write(d); });
      upstream.on('data', (d) => { if (!proxy.frozen) client.write(d); });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      // A peer that dies (SIGKILL with unread data in its socket) resets the connection: no
      // 'end', only 'close'. The other side is closed too, as it would be without the proxy;
      // left open, a database session would keep the dead peer's transaction and its locks.
      client.on('close', () => { if (!proxy.frozen) upstream.destroy(); });
      upstream.on('close', () => { if (!proxy.frozen) client.destroy(); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    proxy = new FreezableProxy(server, (server.address() as { port: number }).port);
    (proxy as unknown as { sockets: Set<Socket> }).sockets = sockets;
    return proxy;
  }

  /** Drop everything from now on, silently; new connections are refused. */
  freeze(): void { this.frozen = true; }

  /** Reset every connection now and refuse new ones until {@link FreezableProxy.restore}. */
  cut(): void {
    this.frozen = true;
    for (const s of this.sockets) s.resetAndDestroy();
  }

  /** Forward again: new connections go through (connections frozen or cut stay dead). */
  restore(): void { this.frozen = false; }

  /** Connections open through the proxy now (each counted on both sides). */
  get connections(): number { return this.sockets.size; }

  /** Close every connection and the proxy. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The admin API key a foreman on this machine left in the local credentials file for its URL, if any. */
export function localApiKeyAt(url: string): string | undefined {
  return localCredentialsAt(url)?.apiKey;
}

/** A worker's hello proof, made synchronously with node:crypto (the runtime uses WebCrypto). */
export function signHello(token: string, workerId: string, host: string, timestamp = Date.now()): { tokenId: string; timestamp: number; nonce: string; signature: string } {
  const parts = parseCredential(token);
  if (parts?.kind !== 'token') throw new TypeError('signHello: not a worker token');
  const nonce = randomBytes(18).toString('base64url');
  const signature = createHmac('sha256', parts.secret).update(helloSigningText({ workerId, tokenId: parts.id, timestamp, nonce, host })).digest('base64url');
  return { tokenId: parts.id, timestamp, nonce, signature };
}
