/**
 * The worker's status server: JSON or the page by the Accept header, the live feed on /ws,
 * /metrics unchanged, /metrics/prometheus, answers only to its own host names (DNS
 * rebinding), and a second worker on the same machine taking the next free status port
 * instead of failing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import WebSocket from 'ws';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { Worker, NonRetryableError } from '../../src/worker/index.ts';
import { ConnectionHistory, Throughput } from '../../src/worker/runtime/status-history.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, freePort, type TestForeman } from '../../src/testing/index.ts';

const parseProm: (text: string) => PromFamily[] = parsePrometheusTextFormat;

/** A GET with exactly the headers given (fetch would add an Accept header of its own). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';

function newWorker(foreman: TestForeman, options: { workerId: string; statusPort: number; logger?: Logger; statusHostNames?: string[] }): Worker {
  const worker = new Worker({
    foremanUrl: foreman.wsUrl, token: foreman.credentials!.workerToken, maxConcurrentTasks: 2, logLevel: 'silent', statusHost: '127.0.0.1', ...options,
  });
  worker.handle('math.add', async (t) => (t.input as { a: number; b: number }).a + (t.input as { a: number; b: number }).b);
  worker.handle('math.fail', async () => { throw new NonRetryableError('this task always fails'); });
  worker.handle('cap.*', async () => 'ok');
  return worker;
}

/** Listeners holding every port of `from`..`to` on 127.0.0.1 that nobody else holds already. */
async function holdPorts(from: number, to: number): Promise<Server[]> {
  const held: Server[] = [];
  for (let port = from; port <= to; port++) {
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) held.push(server);
  }
  return held;
}

const closeAll = (servers: Server[]) => Promise.all(servers.map((s) => new Promise((r) => s.close(r))));

test('GET / answers JSON to clients and the page to browsers; /ws pushes the status; /metrics is unchanged', async () => {
  const foreman = await startTestForeman();
  const worker = newWorker(foreman, { workerId: 'status-<b>&"1"', statusPort: 0 });
  const client = new Client({ url: foreman.url });
  try {
    await worker.start();
    const base = `http://127.0.0.1:${worker.statusPort}`;

    // No Accept header, a bare wildcard, and application/json: the JSON every client got before.
    for (const headers of [{}, { accept: '*/*' }, { accept: 'application/json' }] as Record<string, string>[]) {
      const res = await get(`${base}/`, headers);
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^application\/json/, `JSON for ${JSON.stringify(headers)}`);
      const body = JSON.parse(res.text);
      assert.deepEqual(Object.keys(body).sort(), ['config', 'connected', 'current_task', 'foreman_url', 'running_tasks', 'status', 'worker_id']);
      assert.equal(body.worker_id, 'status-<b>&"1"');
      assert.equal(body.connected, true);
      assert.deepEqual(body.config, { max_concurrent_tasks: 2, allow_code: false, patterns: ['math.add', 'math.fail', 'cap.*'] });
    }

    // A browser: the page's shell, its module, the worker id in the title (escaped), no data in it.
    const page = await get(`${base}/`, { accept: BROWSER_ACCEPT });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers.vary), /accept/i);
    assert.match(page.text, /<title>CrowdCompute worker status-&#60;b&#62;&#38;&#34;1&#34;<\/title>/);
    assert.ok(!page.text.includes('status-<b>'), 'the worker id never reaches the HTML unescaped');
    assert.match(page.text, /<script type="module" src="\/ui\/worker.js">/);
    for (const asset of ['/ui/worker.js', '/ui/worker.css', '/ui/common.js', '/ui/style.css', '/ui/vendor/preact.mjs', '/ui/vendor/uplot.mjs', '/ui/vendor/uplot.css']) {
      assert.equal((await get(`${base}${asset}`)).status, 200, asset);
    }

    // Run a few tasks so that the numbers below are not all zero.
    const job = await client.submitMany([
      ...Array.from({ length: 3 }, (_, i) => ({ type: 'math.add', input: { a: i, b: 1 } })),
      { type: 'math.fail', input: {} },
    ]);
    const outcome = await job.outcome();
    assert.equal(outcome.state, 'failed');

    // The live feed: a status message at once, then again about every second.
    const ws = new WebSocket(`ws://127.0.0.1:${worker.statusPort}/ws`);
    const messages: { type: string; data: any }[] = [];
    ws.on('message', (m) => messages.push(JSON.parse(String(m))));
    try {
      await waitFor(() => messages.length >= 2 || null, { timeoutMs: 30_000, message: 'two status pushes' });
      const { type, data } = messages[0];
      assert.equal(type, 'status');
      assert.equal(data.worker_id, 'status-<b>&"1"');
      assert.equal(data.connection.connected, true);
      assert.equal(data.connection.foreman_url, foreman.wsUrl);
      assert.equal(data.connection.history[0].kind, 'connected');
      assert.equal(data.stats.tasks_completed, 3);
      assert.equal(data.stats.tasks_failed, 1);
      assert.equal(data.throughput.bucket_seconds, 10);
      assert.equal(data.throughput.times.length, 90);
      assert.equal(data.throughput.completed.reduce((a: number, b: number) => a + b, 0), 3);
      assert.equal(data.throughput.failed.reduce((a: number, b: number) => a + b, 0), 1);
      assert.equal(typeof data.host.cpu_percent, 'number');
      assert.equal(typeof data.host.memory_percent, 'number');
    } finally {
      ws.close();
    }

    // Another web site open in the same browser may not read the worker through /ws.
    const foreign = new WebSocket(`ws://127.0.0.1:${worker.statusPort}/ws`, { origin: 'http://evil.example' });
    const refusal = await new Promise<number>((resolve) => {
      foreign.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      foreign.on('open', () => resolve(101));
      foreign.on('error', () => {});
    });
    assert.equal(refusal, 403);
    foreign.terminate();

    // GET /metrics is the documented JSON, field for field.
    const metrics = JSON.parse((await get(`${base}/metrics`)).text);
    assert.deepEqual(Object.keys(metrics).sort(), ['average_execution_time', 'cpu_cores', 'memory_total_gb', 'tasks_completed', 'tasks_failed', 'tasks_queued', 'uptime_seconds']);
    assert.equal(metrics.tasks_completed, 3);
    assert.equal(metrics.tasks_failed, 1);
    assert.equal(metrics.tasks_queued, 0);
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});

/** Whether a WebSocket upgrade with these headers is accepted (101) or refused (its status). */
function upgrade(url: string, headers: Record<string, string>): Promise<number> {
  const ws = new WebSocket(url, { headers });
  return new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {});
  }).finally(() => ws.terminate());
}

test('the status server answers only to its own names, so a page on a rebound DNS name cannot read it, over HTTP or /ws', async () => {
  const foreman = await startTestForeman();
  const worker = newWorker(foreman, { workerId: 'rebind-target', statusPort: 0, statusHostNames: ['worker-7.lab.example'] });
  try {
    await worker.start();
    const port = worker.statusPort!;
    const base = `http://127.0.0.1:${port}`;
    for (const name of ['evil.example', 'localhost.evil.example', '127.0.0.1.nip.example', 'worker-7.lab.example.evil.example']) {
      for (const path of ['/', '/stats', '/health', '/metrics', '/metrics/prometheus', '/ui/worker.js']) {
        const res = await get(`${base}${path}`, { host: `${name}:${port}`, accept: BROWSER_ACCEPT });
        assert.equal(res.status, 403, `${name} ${path}`);
        const body = JSON.parse(res.text);
        assert.equal(body.code, 'CC_ERR_FORBIDDEN');
        assert.ok(body.message.includes(`${name}:${port}`), `the refusal names the Host: ${body.message}`);
        assert.match(body.message, /--status-host-name/);
        assert.ok(!res.text.includes('rebind-target') && !res.text.includes(foreman.wsUrl), 'nothing of the worker in the refusal');
      }
      // The page's origin is the rebound name, so an Origin check alone lets it through.
      assert.equal(await upgrade(`ws://127.0.0.1:${port}/ws`, { host: `${name}:${port}`, origin: `http://${name}:${port}` }), 403, `${name} /ws`);
    }
    const own = ['127.0.0.1', 'localhost', 'LOCALHOST', '[::1]', hostname(), 'worker-7.lab.example', '192.0.2.7', 'status.localhost'];
    for (const name of own) {
      for (const path of ['/', '/stats', '/metrics']) {
        const res = await get(`${base}${path}`, { host: `${name}:${port}` });
        assert.equal(res.status, 200, `${name} ${path}`);
      }
      assert.equal(await upgrade(`ws://127.0.0.1:${port}/ws`, { host: `${name}:${port}`, origin: `http://${name}:${port}` }), 101, `${name} /ws`);
    }
    // The page and its answers carry the same headers as the foreman's.
    for (const [path, accept] of [['/', BROWSER_ACCEPT], ['/', 'application/json'], ['/ui/worker.js', '*/*']]) {
      const res = await get(`${base}${path}`, { accept });
      assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(res.headers['referrer-policy'], 'same-origin', path);
      assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/, path);
      assert.doesNotMatch(String(res.headers['content-security-policy']), /unsafe-inline|unsafe-eval/, path);
    }
  } finally {
    await worker.stop();
    await foreman.cleanup();
  }
});

test('GET /metrics/prometheus: counters, gauges, a histogram by task type with a capped label set, and Node process metrics', async () => {
  const foreman = await startTestForeman();
  const worker = newWorker(foreman, { workerId: 'prom-worker', statusPort: 0 });
  const client = new Client({ url: foreman.url });
  try {
    await worker.start();
    const base = `http://127.0.0.1:${worker.statusPort}`;
    const first = await client.submitMany([
      ...Array.from({ length: 5 }, (_, i) => ({ type: 'math.add', input: { a: i, b: i } })),
      ...Array.from({ length: 2 }, () => ({ type: 'math.fail', input: {} })),
    ]);
    await first.outcome();
    // 55 more distinct types: with math.add and math.fail that is 57, 7 more than the label cap.
    const second = await client.submitMany(Array.from({ length: 55 }, (_, i) => ({ type: `cap.t${i}`, input: i })));
    await second.result();

    const res = await get(`${base}/metrics/prometheus`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    const families = new Map(parseProm(res.text).map((f) => [f.name, f]));
    const value = (name: string) => {
      const f = families.get(name);
      assert.ok(f, `${name} is exported`);
      return Number(f.metrics[0].value);
    };
    assert.equal(value('crowdcompute_worker_tasks_completed_total'), 60);
    assert.equal(value('crowdcompute_worker_tasks_failed_total'), 2);
    assert.equal(value('crowdcompute_worker_tasks_cancelled_total'), 0);
    assert.equal(value('crowdcompute_worker_reconnects_total'), 0);
    assert.equal(value('crowdcompute_worker_running_tasks'), 0);
    assert.equal(value('crowdcompute_worker_capacity'), 2);
    assert.equal(value('crowdcompute_worker_connected'), 1);
    assert.equal(families.get('crowdcompute_worker_tasks_completed_total')!.type, 'COUNTER');
    assert.equal(families.get('crowdcompute_worker_connected')!.type, 'GAUGE');
    assert.deepEqual(families.get('crowdcompute_worker_info')!.metrics[0].labels, { worker_id: 'prom-worker' });

    const histogram = families.get('crowdcompute_worker_task_duration_seconds');
    assert.ok(histogram, 'the execution time histogram is exported');
    assert.equal(histogram.type, 'HISTOGRAM');
    // The parser folds the series of a labelled histogram into one, so the counts per type are
    // read from the text itself.
    const byType = new Map([...res.text.matchAll(/^crowdcompute_worker_task_duration_seconds_count\{type="([^"]*)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    assert.equal(byType.get('math.add'), 5);
    assert.equal(byType.get('math.fail'), 2);
    assert.equal([...byType.keys()].filter((t) => t !== 'other').length, 50, 'at most 50 types by name');
    assert.equal(byType.get('other'), 7, 'the types after the 50th count as "other"');
    assert.equal([...byType.values()].reduce((a, b) => a + b, 0), 62);

    // prom-client's default Node metrics, under their usual names.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(families.has(name), `${name} is exported`);
    }
    assert.deepEqual([...families.keys()].filter((n) => n.startsWith('crowdcompute_') && !n.startsWith('crowdcompute_worker_')), []);

    // The JSON /metrics agrees.
    const json = JSON.parse((await get(`${base}/metrics`)).text);
    assert.equal(json.tasks_completed, 60);
    assert.equal(json.tasks_failed, 2);

    // A reconnection is counted, and the history says why the connection ended.
    worker.restart();
    await waitFor(() => (worker.stats.connects === 2 && worker.connected) || null, { timeoutMs: 30_000, message: 'the worker reconnected' });
    const again = new Map(parseProm((await get(`${base}/metrics/prometheus`)).text).map((f) => [f.name, f]));
    assert.equal(Number(again.get('crowdcompute_worker_reconnects_total')!.metrics[0].value), 1);
    assert.deepEqual(worker.connectionHistory.list().map((e) => [e.kind, e.reason ?? null]), [['connected', null], ['disconnected', 'restart'], ['connected', null]]);
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});

test('a second worker asking for a taken status port takes the next free one, says so, and both answer', async () => {
  const foreman = await startTestForeman();
  const port = await freePort();
  let log = '';
  const sink = new Writable({ write(chunk, _enc, done) { log += chunk; done(); } });
  const first = newWorker(foreman, { workerId: 'port-first', statusPort: port });
  const second = newWorker(foreman, { workerId: 'port-second', statusPort: port, logger: pino({ level: 'info' }, sink) as Logger });
  try {
    await first.start();
    await second.start();
    assert.equal(first.statusPort, port);
    assert.ok(second.statusPort! > port && second.statusPort! <= port + 20, `second took ${second.statusPort}, after ${port}`);
    for (const [worker, id] of [[first, 'port-first'], [second, 'port-second']] as const) {
      const body = JSON.parse((await get(`http://127.0.0.1:${worker.statusPort}/`)).text);
      assert.equal(body.worker_id, id);
    }
    const warning = log.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => /status server/.test(l.msg));
    assert.ok(warning, `a warning about the port: ${log}`);
    assert.match(warning.msg, new RegExp(`port ${port} was taken; listening on ${second.statusPort} instead`));
    assert.equal(warning.port, second.statusPort);
  } finally {
    await second.stop();
    await first.stop();
    await foreman.cleanup();
  }
});

test('when the status port and the 20 after it are all taken, the worker fails to start and names them', async () => {
  const foreman = await startTestForeman();
  // Ports near the top of the range are rarely handed out by the system for other uses.
  const base = (await freePort()) % 20_000 + 40_000;
  const held = await holdPorts(base, base + 20);
  const worker = newWorker(foreman, { workerId: 'no-port', statusPort: base });
  try {
    await assert.rejects(worker.start(), (err: Error) => {
      assert.match(err.message, new RegExp(`ports ${base} to ${base + 20} on 127\\.0\\.0\\.1 are all in use`));
      assert.match(err.message, /--status-port/);
      return true;
    });
  } finally {
    await worker.stop();
    await closeAll(held);
    await foreman.cleanup();
  }
});

test('the CLI prints the status port it really took', async () => {
  const foreman = await startTestForeman();
  const port = await freePort();
  const held = await holdPorts(port, port);
  const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'worker', '--foreman', foreman.wsUrl, '--allow-code', '--status-port', String(port), '--status-host-name', 'worker-7.lab.example', '--id', 'cli-port', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CROWDCOMPUTE_WORKER_TOKEN: foreman.credentials!.workerToken },
  });
  let out = '';
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const line = await waitFor(() => /status http:\/\/127\.0\.0\.1:(\d+) \((\d+) was taken\)/.exec(out), { timeoutMs: 60_000, message: 'the start line' })
      .catch((err: Error) => { throw new Error(`${err.message}; the worker wrote: ${out}`); });
    const took = Number(line[1]);
    assert.equal(Number(line[2]), port);
    assert.ok(took > port && took <= port + 20);
    assert.match(out, new RegExp(`port ${port} was taken; listening on ${took} instead`), 'the log says which port it took');
    const body = JSON.parse((await get(`http://127.0.0.1:${took}/`)).text);
    assert.equal(body.worker_id, 'cli-port');
    assert.equal((await get(`http://127.0.0.1:${took}/`, { host: `worker-7.lab.example:${took}` })).status, 200, 'a name given with --status-host-name is answered');
    assert.equal((await get(`http://127.0.0.1:${took}/`, { host: `evil.example:${took}` })).status, 403, 'another is not');
  } finally {
    child.kill('SIGTERM');
    await exited;
    await closeAll(held);
    await foreman.cleanup();
  }
});

test('the connection history keeps the newest events and folds repeated failures; throughput counts per slot over a moving window', () => {
  const history = new ConnectionHistory(3);
  history.add({ at: 1, kind: 'connected', url: 'ws://a/ws', foremanId: 'f1' });
  history.add({ at: 2, kind: 'disconnected', url: 'ws://a/ws', reason: 'connection lost', code: 1006 });
  for (let at = 3; at < 10; at++) history.add({ at, kind: 'failed', url: 'ws://a/ws', reason: 'could not connect', code: 1006 });
  history.add({ at: 10, kind: 'failed', url: 'ws://b/ws', reason: 'could not connect', code: 1006 });
  history.add({ at: 11, kind: 'connected', url: 'ws://b/ws', foremanId: 'f2' });
  assert.deepEqual(history.list().map((e) => [e.kind, e.url, e.at, e.count ?? 1]), [
    ['connected', 'ws://b/ws', 11, 1],
    ['failed', 'ws://b/ws', 10, 1],
    ['failed', 'ws://a/ws', 9, 7],
  ]);

  const t = new Throughput({ bucketMs: 10, buckets: 3 });
  t.record('completed', 5);
  t.record('completed', 12);
  t.record('failed', 13);
  t.record('cancelled', 25);
  assert.deepEqual(t.series(29), { bucketMs: 10, times: [0, 10, 20], completed: [1, 1, 0], failed: [0, 1, 0], cancelled: [0, 0, 1] });
  // Slots older than the window are forgotten, even though their place in the ring is reused.
  t.record('completed', 31);
  assert.deepEqual(t.series(35), { bucketMs: 10, times: [10, 20, 30], completed: [1, 0, 1], failed: [1, 0, 0], cancelled: [0, 1, 0] });
  assert.deepEqual(t.series(75).completed, [0, 0, 0]);
});
