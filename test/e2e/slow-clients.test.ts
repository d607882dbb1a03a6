/**
 * The foreman's HTTP edge against clients that hold connections: a request whose headers or
 * body drip in byte by byte is answered 408 and closed, and so is a connection on which
 * nothing moves, while ordinary requests, the dashboard's event stream and WebSockets carry on;
 * one address may hold only so many connections, HTTP and WebSocket together, and its
 * refusals are counted and logged once. Raw sockets (node:net) play the slow clients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import WebSocket from 'ws';
import { RawSocket, startTestForeman, waitFor } from '../../src/testing/index.ts';

/** A raw TCP connection to the foreman, with what it received and a promise of its close. */
async function rawConnection(url: string): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = '';
  socket.on('data', (d) => { received += d.toString(); });
  socket.on('error', () => { /* a reset is a close too */ });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => { socket.once('connect', () => resolve()); socket.once('error', reject); });
  return { socket, received: () => received, closed };
}

/**
 * Send `text` one byte at a time, a byte each `everyMs`, until it is all sent or the socket
 * closes. The pace is the client's (a slow-drip attacker's), not a wait for something to happen.
 */
function drip(socket: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) { clearInterval(timer); return; }
    socket.write(text[i++]!);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/** Resolve when `p` does; fail with `what` if it has not within a generous deadline. */
async function within<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

test('slow-drip headers and bodies get 408 and are closed, silent connections are closed; requests, the event stream and WebSockets carry on', async () => {
  const foreman = await startTestForeman({ headersTimeoutMs: 400, requestTimeoutMs: 800, idleTimeoutMs: 800, keepAliveTimeoutMs: 800 });
  const sockets: Socket[] = [];
  try {
    const key = foreman.credentials!.apiKey;
    // Long-lived streams opened before the slow clients: they must outlive every timeout.
    const events = await fetch(`${foreman.url}/api/events`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(events.status, 200);
    const reader = events.body!.getReader();
    await reader.read();
    const ws = await RawSocket.open(foreman.wsUrl);

    // Headers that never end: the request line and a header, a byte every 50 ms, for ever.
    const headers = await rawConnection(foreman.url);
    drip(headers.socket, `GET /health HTTP/1.1\r\nHost: ${new URL(foreman.url).host}\r\nX-Slow: ${'a'.repeat(10_000)}`, 50);
    // A body that never ends: whole headers, then a declared body a byte at a time.
    const body = await rawConnection(foreman.url);
    body.socket.write(`POST /api/jobs HTTP/1.1\r\nHost: ${new URL(foreman.url).host}\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`);
    drip(body.socket, `{"kind":"tasks","tasks":[${'{"type":"a"},'.repeat(10_000)}`, 50);
    // A connection that says nothing at all.
    const silent = await rawConnection(foreman.url);
    sockets.push(headers.socket, body.socket, silent.socket);

    // Meanwhile an ordinary request is served.
    assert.equal((await fetch(`${foreman.url}/health`)).status, 200);

    await within(headers.closed, 'the connection dripping its headers is closed');
    assert.match(headers.received(), /^HTTP\/1\.1 408/, 'it is told why');
    await within(body.closed, 'the connection dripping its body is closed');
    assert.match(body.received(), /^HTTP\/1\.1 408/);
    await within(silent.closed, 'the silent connection is closed');

    // Every timeout has now passed since the streams opened: they still work.
    assert.equal((await fetch(`${foreman.url}/health`)).status, 200);
    const next = await within(reader.read(), 'the dashboard\'s event stream still sends');
    assert.equal(next.done, false);
    assert.ok(ws.isOpen, 'the WebSocket is still open');
    ws.send({ type: 'subscribe_job', requestId: 'still-here', jobId: 'no-such-job' });
    assert.equal((await ws.next((m) => m.requestId === 'still-here')).code, 'CC_ERR_JOB_NOT_FOUND');
    await reader.cancel();
    await ws.close();
  } finally {
    // Should the foreman not close them, the test fails, and does not hang on them.
    for (const socket of sockets) socket.destroy();
    await foreman.cleanup();
  }
});

test('one address holds at most --max-connections-per-address connections, HTTP and WebSocket together; refusals are counted and logged once', async () => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, done) { lines.push(chunk.toString()); done(); } }));
  const foreman = await startTestForeman({ maxConnectionsPerAddress: 3, logger });
  const sockets: Socket[] = [];
  try {
    const held = [await rawConnection(foreman.url), await rawConnection(foreman.url)];
    sockets.push(...held.map((h) => h.socket));
    const ws = await RawSocket.open(foreman.wsUrl);
    // The fourth, fifth and sixth are closed as they open, and say nothing.
    for (let i = 0; i < 3; i++) {
      const refused = await rawConnection(foreman.url);
      sockets.push(refused.socket);
      await within(refused.closed, `connection ${i + 4} is closed at once`);
      assert.equal(refused.received(), '');
    }
    const upgrade = new WebSocket(foreman.wsUrl);
    upgrade.on('error', () => {});
    await within(new Promise((resolve) => upgrade.once('close', resolve)), 'a WebSocket past the cap is closed too');

    const refusals = lines.filter((l) => l.includes('--max-connections-per-address'));
    assert.equal(refusals.length, 1, `one log line for the address, not one per connection: ${refusals.join('')}`);
    assert.match(refusals[0]!, /127\.0\.0\.1/);

    // Once one closes, the address may connect again; the refusals were counted.
    held[0]!.socket.destroy();
    await held[0]!.closed;
    const metrics = await waitFor(async () => {
      const res = await foreman.fetch('/metrics');
      return res.status === 200 ? res.text() : null;
    }, { timeoutMs: 30_000, message: 'a request is served once a connection is free' });
    // Four so far, and maybe more: a request sent before the foreman saw the close is refused too.
    const refusedCount = Number(/crowdcompute_connections_refused_total\{reason="per_address"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(refusedCount >= 4, `the refusals are counted: ${refusedCount}`);
    await ws.close();
  } finally {
    for (const socket of sockets) socket.destroy();
    await foreman.cleanup();
  }
});

test('through a trusted proxy, WebSockets count against the forwarded client address, and the proxy\'s own connections are not capped', async () => {
  const foreman = await startTestForeman({ maxConnectionsPerAddress: 2, trustedProxies: ['127.0.0.1'] });
  const sockets: Socket[] = [];
  const open: WebSocket[] = [];
  const upgrade = (from: string) => new Promise<number>((resolve) => {
    const ws = new WebSocket(foreman.wsUrl, { headers: { authorization: `Bearer ${foreman.credentials!.apiKey}`, 'x-forwarded-for': from } });
    ws.on('error', () => {});
    ws.once('open', () => { open.push(ws); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { ws.terminate(); resolve(res.statusCode ?? 0); });
  });
  try {
    // The proxy (127.0.0.1) holds more connections than the cap: they are its clients'.
    for (let i = 0; i < 3; i++) sockets.push((await rawConnection(foreman.url)).socket);
    assert.equal((await fetch(`${foreman.url}/health`)).status, 200);
    assert.deepEqual([await upgrade('198.51.100.7'), await upgrade('198.51.100.7'), await upgrade('198.51.100.7')], [101, 101, 429],
      'the third WebSocket of one client behind the proxy is refused');
    assert.equal(await upgrade('198.51.100.8'), 101, 'another client behind the same proxy connects');
  } finally {
    for (const ws of open) ws.terminate();
    for (const socket of sockets) socket.destroy();
    await foreman.cleanup();
  }
});
