/**
 * `crowdcompute worker --foreman`, run as a user runs it, with the URLs people type: the
 * foreman's http:// URL (the one the client commands take) works; one without a scheme is a
 * usage error that gives the URL to type; one that reaches nothing, or the wrong thing, is a
 * warning saying why and what to check, once, while the worker keeps trying. When stderr is
 * not a terminal, everything the worker writes there is a JSON log line.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bin } from '../support/cli-process.ts';
import { Client } from '../../src/client/index.ts';
import { freePort, localApiKeyAt, spawnForemanProcess, waitFor, type ChildForeman } from '../../src/testing/index.ts';
import { localCredentialsAt } from '../../src/host/local-credentials.ts';

const handlersModule = fileURLToPath(new URL('../../examples/handlers.ts', import.meta.url));

let root: string;
let foreman: ChildForeman;
/** host:port of the foreman. */
let hostPort: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cc-worker-url-'));
  foreman = await spawnForemanProcess(await freePort(), ['--database', `sqlite:${join(root, 'crowdcompute.db')}`]);
  hostPort = new URL(foreman.url).host;
});

after(async () => {
  foreman?.kill();
  await foreman?.exited;
  rmSync(root, { recursive: true, force: true });
});

/** A worker process, its stderr piped (so not a terminal). */
interface Running { child: ChildProcess; err(): string; exited: Promise<unknown> }

/**
 * Start `crowdcompute worker --handlers … <args>` with no --log-level (the default, info),
 * and nothing in the environment that names a foreman, a token or a log format.
 */
function startWorker(args: string[]): Running {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['CROWDCOMPUTE_FOREMAN', 'CROWDCOMPUTE_URL', 'CROWDCOMPUTE_WORKER_TOKEN', 'CROWDCOMPUTE_LOG_FORMAT', 'CROWDCOMPUTE_LOG_LEVEL']) delete env[k];
  const child = spawn(process.execPath, [bin, 'worker', '--handlers', handlersModule, '--no-status', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, err: () => err, exited };
}

/** Stop a worker (if it still runs) and wait for it to be gone. */
async function stop(w: Running): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await w.exited;
}

/** The JSON lines written so far, parsed; a line that is not JSON fails the test. */
function jsonLines(text: string): { level: number; msg: string; [k: string]: unknown }[] {
  return text.split('\n').filter((l) => l.trim()).map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      assert.fail(`a stderr line that is not JSON: ${line}`);
    }
  });
}

/** Wait (bounded) until the worker, still running, has written a line that `match` accepts. */
async function lineFrom(w: Running, match: RegExp, what: string, timeoutMs = 20_000): Promise<string> {
  return waitFor(() => {
    const line = w.err().split('\n').find((l) => match.test(l));
    if (line) return line;
    if (w.child.exitCode !== null) throw new Error(`the worker exited (${w.child.exitCode}): ${w.err()}`);
    return null;
  }, { timeoutMs, message: what });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('--foreman http://host:port (the URL the client commands take) connects to the foreman\'s /ws and runs a task', async () => {
  const w = startWorker(['--foreman', foreman.url, '--id', 'by-http-url']);
  const client = new Client({ url: foreman.url, apiKey: localApiKeyAt(foreman.url) });
  try {
    await lineFrom(w, new RegExp(`worker by-http-url connected to ${escape(foreman.wsUrl)} `), 'the worker connects');
    const job = await client.submit('math.add', { a: 40, b: 2 });
    assert.deepEqual(await job.result(), { result: 42 });
    assert.deepEqual(jsonLines(w.err()).filter((l) => l.level >= 40), [], 'no warning');
  } finally {
    await client.close();
    await stop(w);
  }
});

test('--foreman host:port without a scheme: exit 2, one line naming the URL to type', async () => {
  const w = startWorker(['--foreman', hostPort]);
  try {
    await waitFor(() => w.child.exitCode !== null || null, { timeoutMs: 20_000, message: 'the worker exits' });
  } finally {
    await stop(w);
  }
  assert.equal(w.child.exitCode, 2, `exit code; stderr: ${w.err()}`);
  const lines = w.err().trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${w.err()}`);
  assert.match(lines[0], new RegExp(`^crowdcompute: .*the foreman URL ${escape(hostPort)} needs http:// or https:// in front: --foreman http://${escape(hostPort)}; see crowdcompute worker --help$`));
});

test('nothing listens at --foreman: one warning with the URL, the reason and what to check, while the worker keeps trying; then it connects', async () => {
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}/ws`;
  // A token of this machine's foreman: the worker finds none for a URL no foreman has recorded.
  const token = localCredentialsAt(foreman.url)!.workerToken!;
  // debug shows every retry, so that the test sees several go by with no second warning.
  const w = startWorker(['--foreman', url, '--token', token, '--id', 'refused', '--log-level', 'debug', '--reconnect-interval', '50ms']);
  let forwarder: Server | null = null;
  const sockets = new Set<Socket>();
  try {
    const line = await lineFrom(w, /cannot connect/, 'the warning', 15_000);
    const warning = JSON.parse(line);
    assert.equal(warning.level, 40, 'a warning');
    assert.equal(warning.url, url);
    assert.match(warning.msg, new RegExp(`^cannot connect to the foreman at ${escape(url)}: connection refused \\(ECONNREFUSED\\): nothing listens on 127\\.0\\.0\\.1:${port}; check --foreman: the foreman's http URL \\(http://<host>:8000\\) or its WebSocket URL \\(ws://<host>:8000/ws\\); retrying until it answers$`));
    await waitFor(() => jsonLines(w.err()).filter((l) => l.msg === 'reconnecting').length >= 3 || null, { timeoutMs: 15_000, message: 'three retries' });
    assert.equal(w.child.exitCode, null, 'the worker keeps running');
    assert.equal(jsonLines(w.err()).filter((l) => /cannot connect/.test(l.msg)).length, 1, 'one warning, not one per retry');
    // The foreman comes up there (a forwarder to the running one): the usual connected line.
    forwarder = createServer((c) => {
      const up = connect(Number(new URL(foreman.url).port), '127.0.0.1');
      for (const s of [c, up]) { sockets.add(s); s.on('error', () => {}); }
      c.pipe(up).pipe(c);
    });
    await new Promise<void>((resolve) => forwarder!.listen(port, '127.0.0.1', resolve));
    await lineFrom(w, new RegExp(`worker refused connected to ${escape(url)} `), 'the worker connects once the foreman is there', 30_000);
  } finally {
    await stop(w);
    for (const s of sockets) s.destroy();
    if (forwarder) await new Promise((resolve) => forwarder!.close(resolve));
  }
});

test('--foreman ws:// without /ws, and wss:// to a plain-HTTP foreman: a warning at the default log level with the reason and the URL meant', async () => {
  const wsNoPath = `ws://${hostPort}`;
  const wss = `wss://${hostPort}/ws`;
  const workers = [startWorker(['--foreman', wsNoPath]), startWorker(['--foreman', wss])];
  try {
    const [notFound, tls] = await Promise.all([
      lineFrom(workers[0], /cannot connect/, 'the warning of ws:// without /ws'),
      lineFrom(workers[1], /cannot connect/, 'the warning of wss:// to plain HTTP'),
    ]);
    assert.match(JSON.parse(notFound).msg, new RegExp(`^cannot connect to the foreman at ${escape(wsNoPath)}: HTTP 404 from ${escape(hostPort)}: the server there has no WebSocket endpoint at / \\(a foreman's is /ws\\); did you mean ${escape(foreman.wsUrl)}\\? check --foreman: .*; retrying until it answers$`));
    assert.match(JSON.parse(tls).msg, new RegExp(`^cannot connect to the foreman at ${escape(wss)}: TLS \\(wss://\\) to ${escape(hostPort)}, which answers plain HTTP \\(EPROTO\\); did you mean ${escape(foreman.wsUrl)}\\? check --foreman: .*; retrying until it answers$`));
    for (const w of workers) assert.equal(w.child.exitCode, null, 'the worker keeps running');
  } finally {
    await Promise.all(workers.map(stop));
  }
});

test('stderr not a terminal: every line is JSON, the connected and draining lines too', async () => {
  const w = startWorker(['--foreman', foreman.wsUrl, '--id', 'json-lines']);
  try {
    await lineFrom(w, /worker json-lines connected to /, 'the worker connects');
    w.child.kill('SIGINT');
    await waitFor(() => w.child.exitCode !== null || null, { timeoutMs: 30_000, message: 'the worker drains and exits' });
  } finally {
    await stop(w);
  }
  assert.equal(w.child.exitCode, 0, `exit code; stderr: ${w.err()}`);
  const lines = jsonLines(w.err());
  const connected = lines.find((l) => l.msg.startsWith('worker json-lines connected to '));
  assert.ok(connected, `the connected line: ${w.err()}`);
  assert.equal(connected.url, foreman.wsUrl);
  assert.equal(connected.workerId, 'json-lines');
  assert.ok(lines.some((l) => l.msg === 'SIGINT: worker json-lines draining (taking no new tasks)' && l.signal === 'SIGINT'), `the draining line: ${w.err()}`);
});
