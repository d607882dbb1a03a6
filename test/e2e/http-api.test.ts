import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '../../src/worker/index.ts';
import { startForeman, type ForemanOptions } from '../../src/foreman/index.ts';
import { RawSocket, startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

let foreman: TestForeman;
let worker: Worker;

async function http(method: string, path: string, body?: unknown, base = foreman.url): Promise<{ status: number; json: any; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${foreman.credentials!.apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
  const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
  const text = await res.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* html or text */ }
  return { status: res.status, json, text };
}

const hasFields = (obj: Record<string, unknown>, fields: string[]) => {
  for (const f of fields) assert.ok(f in obj, `missing field "${f}" in ${JSON.stringify(obj).slice(0, 300)}`);
};

before(async () => {
  foreman = await startTestForeman({ maxPayloadBytes: 256 * 1024 });
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'http-worker', maxConcurrentTasks: 2, allowCode: true, logLevel: 'silent', statusPort: 0, statusHost: '127.0.0.1' });
  worker.handle('analyze_data', async (t) => ({ sum: t.input.args.reduce((a: number, b: number) => a + b, 0), mode: t.input.mode }));
  worker.handle('math.add', async (t) => t.input.a + t.input.b);
  await worker.start();
});

after(async () => {
  await worker.stop();
  await foreman.cleanup();
});

test('POST /task/submit and GET /task/{id} in the FastAPI worker shapes', async () => {
  const sub = await http('POST', '/task/submit', { task_id: 'task_123', payload: { function: 'analyze_data', args: [1, 2, 3], kwargs: { mode: 'fast' } }, priority: 'normal' });
  assert.equal(sub.status, 200);
  hasFields(sub.json, ['status', 'task_id', 'position']);
  assert.equal(sub.json.task_id, 'task_123');
  assert.ok(['queued', 'running', 'completed'].includes(sub.json.status));
  assert.equal(typeof sub.json.position, 'number');
  const done = await waitFor(async () => { const r = await http('GET', '/task/task_123'); return r.json.status === 'completed' ? r : null; });
  hasFields(done.json, ['task_id', 'status', 'result', 'started_at', 'completed_at', 'error']);
  assert.deepEqual(done.json.result, { sum: 6, mode: 'fast' });
  assert.ok(Date.parse(done.json.started_at) <= Date.parse(done.json.completed_at));
  const dup = await http('POST', '/task/submit', { task_id: 'task_123', payload: { function: 'analyze_data', args: [] } });
  assert.equal(dup.status, 409);
  assert.equal(dup.json.code, 'CC_ERR_TASK_EXISTS');
  const missing = await http('GET', '/task/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.code, 'CC_ERR_TASK_NOT_FOUND');
  assert.equal(missing.json.detail, missing.json.message);
  const bad = await http('POST', '/task/submit', { payload: {} });
  assert.equal(bad.status, 400);
  assert.match(bad.json.message, /payload\.function/);
});

test('submissions sent at once are committed together, and a task id already taken refuses only its own submission', async () => {
  const ids = Array.from({ length: 50 }, (_, i) => `burst-${i}`);
  const sent = await Promise.all([...ids, 'burst-7'].map((task_id, i) =>
    http('POST', '/task/submit', { task_id, payload: { function: 'math.add', kwargs: { a: i, b: 1 } } })));
  const refused = sent.filter((r) => r.status !== 200);
  assert.equal(refused.length, 1, `one of the two burst-7 submissions is refused: ${JSON.stringify(refused.map((r) => r.json))}`);
  assert.equal(refused[0].status, 409);
  assert.equal(refused[0].json.code, 'CC_ERR_TASK_EXISTS');
  assert.deepEqual(sent.filter((r) => r.status === 200).map((r) => r.json.task_id).sort(), [...ids].sort());
  for (const [i, id] of ids.entries()) {
    const t = await waitFor(async () => { const r = await http('GET', `/task/${id}`); return r.json.status === 'completed' ? r.json : null; }, { message: `task ${id} completes` });
    if (id !== 'burst-7') assert.equal(t.result, i + 1);
  }
});

test('POST /api/jobs, GET /api/jobs, /api/jobs/{id}, /api/jobs/{id}/tasks, /api/jobs/{id}/results', async () => {
  const created = await http('POST', '/api/jobs', { kind: 'map', code: '(x) => x * 10', args: [1, 2, 3], name: 'tens' });
  assert.equal(created.status, 201);
  const id = created.json.id;
  hasFields(created.json, ['id', 'status', 'total_tasks', 'position', 'created_at']);
  await waitFor(async () => (await http('GET', `/api/jobs/${id}`)).json.status === 'completed' || null);
  const job = (await http('GET', `/api/jobs/${id}`)).json;
  hasFields(job, ['id', 'kind', 'name', 'status', 'priority', 'total_tasks', 'completed_tasks', 'failed_tasks', 'progress', 'created_at', 'started_at', 'completed_at']);
  assert.equal(job.progress, 1);
  const list = await http('GET', '/api/jobs');
  assert.ok(Array.isArray(list.json) && list.json.some((j: any) => j.id === id));
  const filtered = await http('GET', '/api/jobs?status=completed&limit=5');
  assert.ok(filtered.json.every((j: any) => j.status === 'completed'));
  const tasks = await http('GET', `/api/jobs/${id}/tasks`);
  assert.equal(tasks.json.length, 3);
  hasFields(tasks.json[0], ['task_id', 'job_id', 'status', 'worker_id', 'attempt', 'result']);
  const results = await http('GET', `/api/jobs/${id}/results`);
  assert.deepEqual(results.json.results, [10, 20, 30]);
  assert.equal((await http('GET', '/api/jobs/nope')).status, 404);
  const named = await http('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'math.add', input: { a: 2, b: 3 } }], priority: 'critical' });
  await waitFor(async () => (await http('GET', `/api/jobs/${named.json.id}/results`)).json.status === 'completed' || null);
  assert.deepEqual((await http('GET', `/api/jobs/${named.json.id}/results`)).json.results, [5]);
});

test('bad REST input gets a clear error with a stable code and the limit', async () => {
  const notJson = await http('POST', '/api/jobs', '{"kind": ');
  assert.equal(notJson.status, 400);
  assert.equal(notJson.json.code, 'CC_ERR_BAD_JSON');
  const badCode = await http('POST', '/api/jobs', { kind: 'map', code: 'function (', args: [1] });
  assert.equal(badCode.status, 400);
  assert.equal(badCode.json.code, 'CC_ERR_CODE_COMPILE');
  const tooBig = await http('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'math.add', input: 'x'.repeat(300 * 1024) }] });
  assert.equal(tooBig.status, 413);
  assert.equal(tooBig.json.code, 'CC_ERR_PAYLOAD_TOO_LARGE');
  assert.match(tooBig.json.message, /256\.0 KiB/);
  const empty = await http('POST', '/api/jobs', { kind: 'map', code: '(x) => x', args: [] });
  assert.equal(empty.json.code, 'CC_ERR_INVALID_JOB');
});

test('numeric job options past their bounds are refused naming the field and the limit, over REST and WebSocket', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ kind: 'map', code: '(x) => x', args: [1], chunk_size: 2_000_000 }, /chunk_size: must be at most 1000000/],
    [{ kind: 'tasks', tasks: [{ type: 'math.add' }], timeout_ms: 30 * 86_400_000 }, /timeout_ms: must be at most 2073600000 ms \(24 d\)/],
    [{ kind: 'tasks', tasks: [{ type: 'math.add', timeout_ms: 2 ** 40 }] }, /tasks\.0\.timeout_ms: must be at most 2073600000 ms/],
    [{ kind: 'tasks', tasks: [{ type: 'math.add' }], queue_timeout_ms: 2 * 365 * 86_400_000 }, /queue_timeout_ms: must be at most 31536000000 ms \(365 d\)/],
    [{ kind: 'tasks', tasks: [{ type: 'math.add' }], weight: 5_000 }, /weight: must be at most 1000/],
    [{ kind: 'tasks', tasks: [{ type: 'math.add' }], max_concurrency: 2_000_000 }, /max_concurrency: must be at most 1000000/],
  ];
  for (const [spec, message] of cases) {
    const res = await http('POST', '/api/jobs', spec);
    assert.equal(res.status, 400, JSON.stringify(spec));
    assert.match(res.json.message, message);
  }
  const legacy = await http('POST', '/task/submit', { payload: { function: 'math.add' }, timeout_ms: 30 * 86_400_000 });
  assert.equal(legacy.status, 400);
  assert.match(legacy.json.message, /timeout_ms: must be at most 2073600000 ms \(24 d\)/);
  const s = await RawSocket.open(foreman.wsUrl, { token: null });
  try {
    s.send({ type: 'submit_job', requestId: 'big-chunk', job: { kind: 'map', code: '(x) => x', args: [1], chunkSize: 2_000_000 } });
    const err = await s.next((m) => m.requestId === 'big-chunk');
    assert.equal(err.code, 'CC_ERR_BAD_MESSAGE');
    assert.match(err.message, /job\.chunkSize: must be at most 1000000/);
  } finally {
    await s.close();
  }
});

test('foreman and worker options past their bounds are refused at start, naming the option, its flag and the limit', async () => {
  // Refused before anything opens: nothing to clean up.
  const start = (o: ForemanOptions) => startForeman({ port: 0, host: '127.0.0.1', database: 'sqlite::memory:', logLevel: 'silent', ...o });
  await assert.rejects(start({ leaseTtlMs: 30 * 86_400_000 }), /leaseTtlMs \(--lease-ttl\) must be at most 86400000 ms \(24 h\)/);
  await assert.rejects(start({ maxAuthFailuresPerMinute: 0 }), /maxAuthFailuresPerMinute \(--max-auth-failures-per-minute\) must be at least 1/);
  await assert.rejects(start({ headersTimeoutMs: 60_000, requestTimeoutMs: 30_000 }), /--headers-timeout\) must be at most requestTimeoutMs/);
  await assert.rejects(start({ trustedProxies: ['not an address'] }), /--trusted-proxy "not an address" is not an IP address/);
  assert.throws(() => new Worker({ foremanUrl: foreman.wsUrl, drainTimeoutMs: 30 * 86_400_000, logLevel: 'silent' }), /drainTimeoutMs \(--drain-timeout\) must be at most 86400000 ms \(24 h\)/);
  assert.throws(() => new Worker({ foremanUrl: foreman.wsUrl, maxConcurrentTasks: 20_000, logLevel: 'silent' }), /maxConcurrentTasks \(--concurrency\) must be at most 10000/);
  assert.throws(() => new Worker({ foremanUrl: foreman.wsUrl, sandbox: { defaultTimeoutMs: 2 ** 31 }, allowCode: true, logLevel: 'silent' }), /--sandbox-timeout\) must be at most 2073600000 ms \(24 d\)/);
});

test('POST /api/jobs/{id}/cancel cancels a queued job', async () => {
  const created = await http('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'nobody.handles.this', input: {} }] });
  const cancelled = await http('POST', `/api/jobs/${created.json.id}/cancel`);
  assert.equal(cancelled.status, 200);
  assert.equal(cancelled.json.status, 'cancelled');
  assert.equal(cancelled.json.cancelled_tasks, 1);
  assert.equal((await http('POST', '/api/jobs/nope/cancel')).status, 404);
});

test('GET /api/stats (connected_workers), GET /api/workers, GET /health (FastAPI worker fields), GET /metrics', async () => {
  const stats = (await http('GET', '/api/stats')).json;
  hasFields(stats, ['connected_workers', 'total_jobs', 'active_jobs', 'completed_jobs', 'failed_jobs', 'total_tasks', 'queued_tasks', 'running_tasks']);
  assert.equal(stats.connected_workers, 1);
  const workers = (await http('GET', '/api/workers')).json;
  assert.equal(workers.length, 1);
  hasFields(workers[0], ['worker_id', 'status', 'capacity', 'running_tasks', 'patterns', 'allow_code', 'resources', 'connected_at', 'last_seen_at', 'tasks_completed']);
  assert.equal(workers[0].worker_id, 'http-worker');
  assert.equal(workers[0].status, 'online');
  hasFields(workers[0].resources, ['cpuCores', 'memoryMb', 'platform']);
  const health = await http('GET', '/health');
  assert.equal(health.status, 200);
  hasFields(health.json, ['status', 'active_tasks', 'queue_size', 'cpu_percent', 'memory_percent', 'timestamp']);
  assert.equal(health.json.status, 'healthy');
  const metrics = await http('GET', '/metrics');
  assert.match(metrics.text, /crowdcompute_connected_workers 1/);
  assert.match(metrics.text, /crowdcompute_results_committed_total \d+/);
});

test('the OpenAPI document: every route with an operation id, its answers and its errors; the docs page and the dashboard are served', async () => {
  const spec = (await http('GET', '/openapi.json')).json;
  assert.equal(spec.openapi.slice(0, 1), '3');
  assert.match(spec.info.title, /CrowdCompute/);
  for (const p of ['/api/stats', '/api/jobs', '/api/jobs/{id}', '/api/jobs/{id}/tasks', '/api/jobs/{id}/retry', '/api/tasks/{id}/retry', '/api/failed', '/api/failed/retry', '/api/workers', '/api/workers/{id}', '/task/submit', '/task/{id}', '/health', '/health/live', '/metrics/prometheus']) {
    assert.ok(spec.paths[p], `OpenAPI lists ${p}`);
  }
  const ids = new Set<string>();
  for (const [path, methods] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const what = `${method.toUpperCase()} ${path}`;
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z]+$/, `${what} has an operation id`);
      assert.ok(!ids.has(op.operationId), `${what}: operation ids are unique`);
      ids.add(op.operationId);
      assert.ok(op.summary, `${what} has a summary`);
      assert.ok(Object.keys(op.responses).some((s) => s.startsWith('2')), `${what} documents its answer`);
      assert.ok(op.responses['500'] && op.responses['503'], `${what} documents its errors`);
      if (path !== '/health' && path !== '/health/live') assert.ok(op.responses['401'], `${what} documents 401`);
    }
  }
  const submit = spec.paths['/api/jobs'].post;
  assert.ok(submit.requestBody, 'the submission documents its body');
  assert.ok(submit.responses['201'].content['application/json'].schema.properties.warnings, 'and its answer, warnings included');
  const docs = await http('GET', '/docs/');
  assert.equal(docs.status, 200);
  assert.match(docs.text, /<title>CrowdCompute API<\/title>/);
  const page = await http('GET', '/');
  assert.match(page.text, /<title>CrowdCompute<\/title>/);
  assert.match(page.text, /\/ui\/dashboard\.js/);
});

test("the worker's status server: GET / and /stats, POST /restart, GET /health and /metrics", async () => {
  const base = `http://127.0.0.1:${worker.statusPort}`;
  const root = (await http('GET', '/', undefined, base)).json;
  hasFields(root, ['worker_id', 'status', 'current_task', 'foreman_url', 'config']);
  assert.equal(root.worker_id, 'http-worker');
  const stats = (await http('GET', '/stats', undefined, base)).json;
  hasFields(stats.stats, ['tasks_completed', 'tasks_failed', 'total_execution_time']);
  assert.ok(stats.stats.tasks_completed >= 1);
  const health = (await http('GET', '/health', undefined, base)).json;
  hasFields(health, ['status', 'active_tasks', 'queue_size', 'cpu_percent', 'memory_percent']);
  const metrics = (await http('GET', '/metrics', undefined, base)).json;
  hasFields(metrics, ['tasks_completed', 'tasks_failed', 'average_execution_time', 'uptime_seconds', 'cpu_cores', 'memory_total_gb']);
  const connectsBefore = worker.stats.connects;
  const refused = await http('POST', '/restart', undefined, base);
  assert.equal(refused.status, 401, "POST /restart needs the worker's own token");
  const restart = await (await fetch(`${base}/restart`, { method: 'POST', headers: { authorization: `Bearer ${foreman.credentials!.workerToken}` } })).json();
  assert.equal(restart.status, 'restarting');
  await waitFor(() => worker.stats.connects === connectsBefore + 1 && worker.connected || null, { message: 'worker reconnected after /restart' });
});
