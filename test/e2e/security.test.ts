/**
 * The security suite: every REST route and the WebSocket refuse missing, bad, revoked and
 * under-scoped credentials with the right status and code; workers prove their tokens and are
 * cut off when one is revoked; a key sees and cancels only its own jobs; dashboard sessions
 * need their CSRF token for changes; failed attempts are limited per client address and per key
 * id, never refusing a valid credential, with the client's address forwarded only by trusted
 * proxies; TLS works end to end. Credentials are made with the CLI, as an operator would.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { RawSocket, signHello, spawnForemanProcess, freePort, startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const cli = async (args: string[]) => (await run(process.execPath, [bin, ...args], { env: process.env, timeout: 60_000 })).stdout.trim();

let foreman: TestForeman;
/** Keys and tokens, made with `crowdcompute key create` / `token create` against the foreman's database. */
const keys: Record<'read' | 'submit' | 'submit2' | 'code' | 'admin' | 'revoked', string> = {} as never;
const BAD_KEY = `cck_AAAAAAAAAAAA_${'x'.repeat(43)}`;

before(async () => {
  foreman = await startTestForeman({ maxAuthFailuresPerMinute: 100_000, authenticateWithinMs: 500, heartbeatIntervalMs: 100, leaseTtlMs: 2_000 });
  const db = ['--database', foreman.databaseUrl];
  const make = (scopes: string, name: string) => cli(['key', 'create', '--scopes', scopes, '--name', name, ...db]);
  [keys.read, keys.submit, keys.submit2, keys.code, keys.admin, keys.revoked] = await Promise.all([
    make('read', 'reader'), make('submit', 'submitter'), make('submit', 'another submitter'), make('submit,submit:code', 'coder'), make('admin', 'operator'), make('read,submit', 'soon revoked'),
  ]);
  await cli(['key', 'revoke', keys.revoked.split('_')[1], ...db]);
});

after(async () => {
  await foreman.cleanup();
});

async function call(method: string, path: string, key: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${foreman.url}${path}`, {
    method, redirect: 'manual',
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, headers: res.headers };
}

test('every REST route refuses no, bad and revoked keys (401) and keys without its scope (403)', async () => {
  const job = await call('POST', '/api/jobs', keys.submit, { kind: 'tasks', tasks: [{ type: 'nobody.runs.this' }] });
  assert.equal(job.status, 201);
  const taskId = `${job.json.id}.0`;
  const schedule = await call('POST', '/api/schedules', keys.submit, { id: 'sec-schedule', every: '1h', job: { kind: 'tasks', tasks: [{ type: 'nobody.runs.this' }] } });
  assert.equal(schedule.status, 201);
  const sched = '/api/schedules/sec-schedule';
  const readerKey = `/api/keys/${keys.read.split('_')[1]}`;
  // Each route: what it needs (a scope; `own` = any key, for its own jobs; `self` = the key the path names, or admin) and a body.
  const routes: { method: string; path: string; openapi: string; needs: string; body?: unknown }[] = [
    { method: 'GET', path: '/api/stats', openapi: '/api/stats', needs: 'read' },
    { method: 'GET', path: '/api/workers', openapi: '/api/workers', needs: 'read' },
    { method: 'GET', path: '/metrics', openapi: '/metrics', needs: 'read' },
    { method: 'GET', path: '/metrics/prometheus', openapi: '/metrics/prometheus', needs: 'read' },
    { method: 'GET', path: '/api/events', openapi: '/api/events', needs: 'read' },
    { method: 'GET', path: '/api/series', openapi: '/api/series', needs: 'read' },
    { method: 'GET', path: '/api/workers/nobody', openapi: '/api/workers/{id}', needs: 'read' },
    { method: 'GET', path: '/api/rate-limits', openapi: '/api/rate-limits', needs: 'read' },
    { method: 'PUT', path: '/api/rate-limits', openapi: '/api/rate-limits', needs: 'admin', body: { pattern: 'sec.none', limit: '5/s' } },
    { method: 'DELETE', path: '/api/rate-limits?pattern=sec.none', openapi: '/api/rate-limits', needs: 'admin' },
    { method: 'GET', path: '/api/join-links', openapi: '/api/join-links', needs: 'admin' },
    { method: 'POST', path: '/api/join-links', openapi: '/api/join-links', needs: 'admin', body: {} },
    { method: 'POST', path: '/api/join-links/nope/revoke', openapi: '/api/join-links/{id}/revoke', needs: 'admin' },
    { method: 'GET', path: readerKey, openapi: '/api/keys/{id}', needs: 'self' },
    { method: 'PUT', path: `${readerKey}/webhook`, openapi: '/api/keys/{id}/webhook', needs: 'self', body: { url: 'https://example.com/hook' } },
    { method: 'DELETE', path: `${readerKey}/webhook`, openapi: '/api/keys/{id}/webhook', needs: 'self' },
    { method: 'GET', path: '/api/jobs', openapi: '/api/jobs', needs: 'own' },
    { method: 'POST', path: '/api/jobs', openapi: '/api/jobs', needs: 'submit', body: { kind: 'tasks', tasks: [{ type: 'a' }] } },
    { method: 'GET', path: `/api/jobs/${job.json.id}`, openapi: '/api/jobs/{id}', needs: 'own' },
    { method: 'GET', path: `/api/jobs/${job.json.id}/tasks`, openapi: '/api/jobs/{id}/tasks', needs: 'own' },
    { method: 'GET', path: `/api/jobs/${job.json.id}/results`, openapi: '/api/jobs/{id}/results', needs: 'own' },
    { method: 'POST', path: `/api/jobs/${job.json.id}/tasks`, openapi: '/api/jobs/{id}/tasks', needs: 'own', body: { tasks: [{ type: 'a' }] } },
    { method: 'POST', path: `/api/jobs/${job.json.id}/seal`, openapi: '/api/jobs/{id}/seal', needs: 'own' },
    { method: 'POST', path: `/api/jobs/${job.json.id}/cancel`, openapi: '/api/jobs/{id}/cancel', needs: 'own' },
    { method: 'POST', path: `/api/jobs/${job.json.id}/retry`, openapi: '/api/jobs/{id}/retry', needs: 'own' },
    { method: 'POST', path: `/api/tasks/${taskId}/retry`, openapi: '/api/tasks/{id}/retry', needs: 'own' },
    { method: 'GET', path: '/api/failed', openapi: '/api/failed', needs: 'own' },
    { method: 'POST', path: '/api/failed/retry', openapi: '/api/failed/retry', needs: 'submit', body: {} },
    { method: 'POST', path: '/task/submit', openapi: '/task/submit', needs: 'submit', body: { payload: { function: 'a' } } },
    { method: 'GET', path: `/task/${taskId}`, openapi: '/task/{id}', needs: 'own' },
    { method: 'GET', path: `/api/tasks/${taskId}`, openapi: '/api/tasks/{id}', needs: 'own' },
    { method: 'GET', path: `/api/jobs/${job.json.id}/graph`, openapi: '/api/jobs/{id}/graph', needs: 'own' },
    { method: 'GET', path: `/api/jobs/${job.json.id}/code`, openapi: '/api/jobs/{id}/code', needs: 'own' },
    { method: 'GET', path: `/api/jobs/${job.json.id}/webhook-deliveries`, openapi: '/api/jobs/{id}/webhook-deliveries', needs: 'own' },
    { method: 'GET', path: `/api/tasks/${taskId}/artifacts`, openapi: '/api/tasks/{id}/artifacts', needs: 'own' },
    { method: 'GET', path: `/api/tasks/${taskId}/batches`, openapi: '/api/tasks/{id}/batches', needs: 'own' },
    { method: 'POST', path: `/task/${taskId}/cancel`, openapi: '/task/{id}/cancel', needs: 'own' },
    { method: 'POST', path: `/api/tasks/${taskId}/cancel`, openapi: '/api/tasks/{id}/cancel', needs: 'own' },
    { method: 'POST', path: '/api/files?filename=a.txt', openapi: '/api/files', needs: 'submit', body: { any: 'bytes' } },
    { method: 'GET', path: '/api/files/nope', openapi: '/api/files/{id}', needs: 'own' },
    { method: 'GET', path: '/api/files/nope/download', openapi: '/api/files/{id}/download', needs: 'own' },
    { method: 'GET', path: '/api/schedules', openapi: '/api/schedules', needs: 'own' },
    { method: 'POST', path: '/api/schedules', openapi: '/api/schedules', needs: 'submit', body: { id: 'sec-other', every: '1h', job: { kind: 'tasks', tasks: [{ type: 'a' }] } } },
    { method: 'GET', path: sched, openapi: '/api/schedules/{id}', needs: 'own' },
    { method: 'PATCH', path: sched, openapi: '/api/schedules/{id}', needs: 'submit', body: { name: 'renamed' } },
    { method: 'DELETE', path: sched, openapi: '/api/schedules/{id}', needs: 'submit' },
    { method: 'POST', path: `${sched}/pause`, openapi: '/api/schedules/{id}/pause', needs: 'submit', body: {} },
    { method: 'POST', path: `${sched}/resume`, openapi: '/api/schedules/{id}/resume', needs: 'submit', body: {} },
    { method: 'POST', path: `${sched}/trigger`, openapi: '/api/schedules/{id}/trigger', needs: 'submit', body: {} },
    { method: 'POST', path: `${sched}/backfill`, openapi: '/api/schedules/{id}/backfill', needs: 'submit', body: { from: 0, to: 1 } },
  ];
  const open = ['/health', '/health/live'];
  const documented = Object.keys((await call('GET', '/openapi.json', null)).json.paths);
  assert.deepEqual([...new Set(routes.map((r) => r.openapi)), ...open].sort(), documented.sort(), 'every documented route is in this matrix');
  assert.equal((await call('GET', '/health', null)).status, 200, '/health is open');
  assert.equal((await call('GET', '/health/live', null)).status, 200, '/health/live is open');

  for (const r of routes) {
    const what = `${r.method} ${r.path}`;
    for (const [label, key] of [['no key', null], ['a bad key', BAD_KEY], ['a revoked key', keys.revoked], ['a malformed header', 'not-a-key']] as const) {
      const res = await call(r.method, r.path, key, r.body);
      assert.equal(res.status, 401, `${what} with ${label}`);
      assert.equal(res.json.code, 'CC_ERR_UNAUTHORIZED', `${what} with ${label}`);
      assert.match(res.headers.get('www-authenticate') ?? '', /Bearer/);
    }
    if (r.needs === 'read' || r.needs === 'submit' || r.needs === 'admin') {
      const res = await call(r.method, r.path, r.needs === 'read' ? keys.submit : keys.read, r.body);
      assert.equal(res.status, 403, `${what} without the ${r.needs} scope`);
      assert.equal(res.json.code, 'CC_ERR_FORBIDDEN');
      assert.match(res.json.message, new RegExp(`"${r.needs}" scope`));
    }
    if (r.needs === 'self') {
      // Another key than the one named is refused, unless it is admin; the key itself gets through.
      const res = await call(r.method, r.path, keys.submit, r.body);
      assert.equal(res.status, 403, `${what} by another key`);
      assert.equal(res.json.code, 'CC_ERR_FORBIDDEN');
      assert.match(res.json.message, /"admin" scope/);
      assert.equal((await call(r.method, r.path, keys.read, r.body)).status, 200, `${what} by the key itself`);
      assert.equal((await call(r.method, r.path, keys.admin, r.body)).status, 200, `${what} by admin`);
    }
    if (r.path.includes(job.json.id) || (r.path.startsWith(sched) && r.needs !== 'read')) {
      // Another key's job or schedule is not found, whatever the key may do otherwise.
      const res = await call(r.method, r.path, keys.submit2, r.body);
      assert.equal(res.status, 404, `${what} by another key`);
      assert.match(res.json.code, /CC_ERR_(JOB|TASK|SCHEDULE)_NOT_FOUND/);
    }
  }
  // The owner and admin get through.
  assert.equal((await call('GET', `/api/jobs/${job.json.id}`, keys.submit)).status, 200);
  assert.equal((await call('GET', `/api/jobs/${job.json.id}`, keys.admin)).status, 200);
  assert.equal((await call('GET', '/metrics', keys.read)).status, 200);
});

test('a key sees and cancels only its own jobs; admin sees and cancels all, and that is audited', async () => {
  const a = new Client({ url: foreman.url, apiKey: keys.submit });
  const b = new Client({ url: foreman.url, apiKey: keys.submit2 });
  const admin = new Client({ url: foreman.url, apiKey: keys.admin });
  try {
    const mine = await a.submit('nobody.runs.this', {});
    const theirs = await b.submit('nobody.runs.this', {});
    assert.ok((await a.listJobs()).every((j) => j.id !== theirs.jobId), 'a listing shows only its own jobs');
    assert.ok((await a.listJobs()).some((j) => j.id === mine.jobId));
    await assert.rejects(a.getJob(theirs.jobId), /CC_ERR_JOB_NOT_FOUND/);
    await assert.rejects(a.cancel(theirs.jobId), /CC_ERR_JOB_NOT_FOUND/);
    await assert.rejects(a.watch(theirs.jobId), /CC_ERR_JOB_NOT_FOUND/);
    // Over the WebSocket too: subscribing to another key's job is "not found".
    const s = await RawSocket.open(foreman.wsUrl, { apiKey: keys.submit, token: null });
    s.send({ type: 'subscribe_job', requestId: 'r', jobId: theirs.jobId });
    assert.equal((await s.next((m) => m.type === 'error')).code, 'CC_ERR_JOB_NOT_FOUND');
    s.send({ type: 'cancel_job', requestId: 'c', jobId: theirs.jobId });
    assert.equal((await s.next((m) => m.type === 'error' && m.requestId === 'c')).code, 'CC_ERR_JOB_NOT_FOUND');
    await s.close();
    assert.ok((await admin.listJobs({ limit: 1000 })).some((j) => j.id === theirs.jobId), 'admin sees every owner\'s jobs');
    assert.equal((await admin.cancel(theirs.jobId)).status, 'cancelled');
    const metrics = await (await fetch(`${foreman.url}/metrics`, { headers: { authorization: `Bearer ${keys.read}` } })).text();
    assert.match(metrics, /crowdcompute_security_events_total\{event="admin_cancel"\} [1-9]/, 'the admin\'s cancel is a security event');
    // An idempotency key taken by another owner does not hand its job out.
    await a.submit('nobody.runs.this', {}, { idempotencyKey: 'shared-key' });
    await assert.rejects(b.submit('nobody.runs.this', {}, { idempotencyKey: 'shared-key' }), /CC_ERR_INVALID_JOB.*another owner/);
  } finally {
    await Promise.all([a.close(), b.close(), admin.close()]);
  }
});

test('shipping code is a scope of its own: submit alone may not send map jobs', async () => {
  const plain = new Client({ url: foreman.url, apiKey: keys.submit });
  const coder = new Client({ url: foreman.url, apiKey: keys.code });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'sec-coder', allowCode: true, logLevel: 'silent' });
  try {
    await worker.start();
    await assert.rejects(plain.map((x: number) => x, [1]), /CC_ERR_FORBIDDEN: a map job \(shipped code\) needs the "submit:code" scope/);
    assert.deepEqual(await coder.map((x: number) => x * 3, [1, 2]), [3, 6]);
  } finally {
    await Promise.all([plain.close(), coder.close(), worker.stop()]);
  }
});

test('the WebSocket: a bad or revoked key is refused at the upgrade; no key may not submit; a connection that proves nothing is closed', async () => {
  for (const key of [BAD_KEY, keys.revoked]) {
    const ws = new WebSocket(foreman.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    ws.on('error', () => {});
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 401);
    ws.terminate();
  }
  const anon = await RawSocket.open(foreman.wsUrl, { apiKey: null, token: null });
  anon.send({ type: 'submit_job', requestId: 'r1', job: { kind: 'tasks', tasks: [{ type: 'a' }] } });
  const err = await anon.next((m) => m.type === 'error');
  assert.equal(err.code, 'CC_ERR_UNAUTHORIZED');
  assert.equal(err.requestId, 'r1');
  assert.equal(await anon.closed, 4401, 'closed when it proved nothing in time');
  const reader = await RawSocket.open(foreman.wsUrl, { apiKey: keys.read, token: null });
  reader.send({ type: 'submit_job', requestId: 'r2', job: { kind: 'tasks', tasks: [{ type: 'a' }] } });
  assert.equal((await reader.next((m) => m.type === 'error')).code, 'CC_ERR_FORBIDDEN');
  await reader.close();
});

test('workers: wrong, forged, replayed and stale hellos are refused; a rotated token connects; a revoked one is cut off at once', async () => {
  const db = ['--database', foreman.databaseUrl];
  const tokenFor = (id: string) => cli(['token', 'create', '--worker', id, ...db]);
  const [mine, other] = await Promise.all([tokenFor('sec-w1'), tokenFor('sec-someone-else')]);
  const host = new URL(foreman.wsUrl).host;
  const hello = (workerId: string) => ({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId, capacity: 1, patterns: ['x'], allowCode: false });
  const refused = async (message: object, why: RegExp) => {
    const s = await RawSocket.open(foreman.wsUrl, { apiKey: null, token: null });
    s.send(message);
    const err = await s.next((m) => m.type === 'error');
    assert.equal(err.code, 'CC_ERR_UNAUTHORIZED');
    assert.match(err.message, why);
    assert.equal(await s.closed, 4401);
  };
  await refused(hello('sec-w1'), /no credential/);
  await refused({ ...hello('sec-w1'), auth: signHello(other, 'sec-w1', host) }, /is for worker sec-someone-else/);
  const forged = signHello(mine, 'sec-w1', host);
  await refused({ ...hello('sec-w1'), auth: { ...forged, signature: forged.signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } }, /not valid/);
  await refused({ ...hello('sec-w1'), auth: signHello(mine, 'sec-w1', 'elsewhere:9999') }, /not valid/);
  await refused({ ...hello('sec-w1'), auth: signHello(mine, 'sec-w1', host, Date.now() - 5 * 60_000) }, /off this foreman's clock/);
  // A refusal whose reason is longer in UTF-8 than a close frame holds (a worker id in another
  // script) still closes the connection at once.
  const wide = 'ꧏ🬕ꔉ𛈚𘲜'.repeat(8);
  await refused({ ...hello(wide), auth: signHello(mine, wide, host, Date.now() - 5 * 60_000) }, /off this foreman's clock/);
  const once = signHello(mine, 'sec-w1', host);
  const first = await RawSocket.open(foreman.wsUrl, { apiKey: null, token: null });
  first.send({ ...hello('sec-w1'), auth: once });
  await first.next((m) => m.type === 'welcome');
  await first.close();
  await refused({ ...hello('sec-w1'), auth: once }, /replayed/);

  // Rotation: a new token for the same worker connects; the old one, revoked, cuts its worker off.
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'sec-w1', token: mine, logLevel: 'silent', reconnectIntervalMs: 50 });
  worker.handle('x', async () => 'ok');
  worker.on('error', () => {});
  const rotated = await tokenFor('sec-w1');
  const next = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'sec-w1-next', token: await tokenFor('sec-w1-next'), logLevel: 'silent' });
  next.handle('x', async () => 'ok');
  try {
    await worker.start();
    await cli(['token', 'revoke', mine.split('_')[1], ...db]);
    await waitFor(() => worker.status === 'stopped' || null, { timeoutMs: 10_000, message: 'the worker with the revoked token is cut off and stops' });
    const replacement = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'sec-w1', token: rotated, logLevel: 'silent' });
    replacement.handle('x', async () => 'ok');
    await replacement.start();
    await next.start();
    assert.ok(replacement.connected && next.connected);
    await replacement.stop();
    await assert.rejects(new Worker({ foremanUrl: foreman.wsUrl, workerId: 'sec-w1', token: mine, logLevel: 'silent' }).start(), /CC_ERR_UNAUTHORIZED.*not valid/);
  } finally {
    await Promise.all([worker.stop(), next.stop()]);
  }
});

test('dashboard sessions: a login sets an HttpOnly SameSite=Strict cookie; changes through it need the CSRF token', async () => {
  assert.equal((await call('GET', '/', null)).status, 302, 'the status page sends strangers to the login');
  assert.equal((await call('POST', '/login', null, { key: BAD_KEY })).status, 401);
  const login = await call('POST', '/login', null, { key: keys.submit });
  assert.equal(login.status, 200);
  const cookies = login.headers.getSetCookie();
  assert.ok(cookies.some((c) => /^cc_session=/.test(c) && /HttpOnly/.test(c) && /SameSite=Strict/.test(c)));
  const cookie = cookies.map((c) => c.split(';')[0]).join('; ');
  const csrf = /cc_csrf=([^;]+)/.exec(cookie)![1];
  assert.equal((await call('GET', '/', null, undefined, { cookie })).status, 200);
  const job = await call('POST', '/api/jobs', keys.submit, { kind: 'tasks', tasks: [{ type: 'nobody.runs.this' }] });
  const noCsrf = await call('POST', `/api/jobs/${job.json.id}/cancel`, null, undefined, { cookie });
  assert.equal(noCsrf.status, 403);
  assert.match(noCsrf.json.message, /CSRF/);
  const withCsrf = await call('POST', `/api/jobs/${job.json.id}/cancel`, null, undefined, { cookie, 'x-csrf-token': csrf });
  assert.equal(withCsrf.status, 200);
  assert.equal(withCsrf.json.status, 'cancelled');
});

test('a revoked key\'s open dashboard feed is ended, as its sockets are', async () => {
  const key = await cli(['key', 'create', '--scopes', 'read', '--name', 'feed viewer', '--database', foreman.databaseUrl]);
  const res = await fetch(`${foreman.url}/api/events`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200);
  const ended = (async () => { for await (const _chunk of res.body!) { /* read until the foreman ends it */ } return true; })();
  await cli(['key', 'revoke', key.split('_')[1], '--database', foreman.databaseUrl]);
  assert.equal(await Promise.race([ended, new Promise((r) => setTimeout(() => r(false), 20_000))]), true, 'the stream ended');
  assert.equal((await call('GET', '/api/events', key)).status, 401);
});

test('failed attempts are limited per address, and say nothing about which keys exist', async () => {
  const f = await startTestForeman({ maxAuthFailuresPerMinute: 5 });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await fetch(`${f.url}/api/jobs`, { headers: { authorization: `Bearer ${i % 2 ? BAD_KEY : `cck_${f.credentials!.apiKey.split('_')[1]}_${'y'.repeat(43)}`}` } })).status);
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401], 'an existing key id with a wrong secret reads the same as an unknown key');
    assert.ok(statuses.slice(5).every((s) => s === 429), `then 429: ${statuses}`);
    const body = await (await fetch(`${f.url}/api/jobs`, { headers: { authorization: `Bearer ${BAD_KEY}` } })).json();
    assert.equal(body.code, 'CC_ERR_RATE_LIMITED');
    assert.match(body.message, /too many failed attempts from 127\.0\.0\.1 .*--max-auth-failures-per-minute.*a valid credential is still accepted/);
  } finally {
    await f.cleanup();
  }
});

test('the failed-attempt limit never refuses a valid credential: a key, a login and a worker from an address over it get in', async () => {
  const f = await startTestForeman({ maxAuthFailuresPerMinute: 5 });
  const worker = new Worker({ foremanUrl: f.wsUrl, workerId: 'sec-after-failures', token: f.credentials!.workerToken, logLevel: 'silent' });
  worker.handle('x', async () => 'ok');
  try {
    // 21 bad bearers from this address: it is well over its budget.
    for (let i = 0; i < 21; i++) await fetch(`${f.url}/api/jobs`, { headers: { authorization: `Bearer ${BAD_KEY}` } });
    assert.equal((await fetch(`${f.url}/api/jobs`, { headers: { authorization: `Bearer ${BAD_KEY}` } })).status, 429, 'failures from it are refused');
    assert.equal((await fetch(`${f.url}/api/jobs`, { headers: { authorization: `Bearer ${f.credentials!.apiKey}` } })).status, 200, 'a valid key is accepted');
    const login = await fetch(`${f.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: f.credentials!.apiKey }) });
    assert.equal(login.status, 200, 'a login with a valid key is accepted');
    assert.equal((await fetch(`${f.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: BAD_KEY }) })).status, 429);
    // WebSocket upgrades: a valid key opens, a bad one is refused with 429.
    const keyed = await RawSocket.open(f.wsUrl, { apiKey: f.credentials!.apiKey, token: null });
    await keyed.close();
    const bad = new WebSocket(f.wsUrl, { headers: { authorization: `Bearer ${BAD_KEY}` } });
    bad.on('error', () => {});
    assert.equal(await new Promise<number>((resolve) => bad.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))), 429);
    bad.terminate();
    // Workers: a valid hello is welcomed; a forged one gets CC_ERR_RATE_LIMITED.
    await worker.start();
    assert.ok(worker.connected, 'a worker with a valid token connects from the same address');
    const host = new URL(f.wsUrl).host;
    const forged = signHello(f.credentials!.workerToken, 'sec-forged', host);
    const s = await RawSocket.open(f.wsUrl, { apiKey: null, token: null });
    s.send({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'sec-forged', capacity: 1, patterns: ['x'], allowCode: false, auth: { ...forged, signature: forged.signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } });
    assert.equal((await s.next((m) => m.type === 'error')).code, 'CC_ERR_RATE_LIMITED');
    await s.closed;
  } finally {
    await worker.stop();
    await f.cleanup();
  }
});

test('trusted proxies: X-Forwarded-For names the client for HTTP and WebSocket alike, only from them; failures count per address and per key id', async () => {
  const f = await startTestForeman({ maxAuthFailuresPerMinute: 3, trustedProxies: ['127.0.0.1'] });
  const direct = await startTestForeman({ maxAuthFailuresPerMinute: 3 });
  const wrongSecret = (key: string) => `cck_${key.split('_')[1]}_${'y'.repeat(43)}`;
  const get = (base: string, key: string, from: string) => fetch(`${base}/api/jobs`, { headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': from } }).then((r) => r.status);
  const upgrade = (key: string, from: string) => new Promise<number>((resolve) => {
    const ws = new WebSocket(f.wsUrl, { headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': from } });
    ws.on('error', () => {});
    ws.once('open', () => { ws.terminate(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { ws.terminate(); resolve(res.statusCode ?? 0); });
  });
  try {
    // Behind the proxy, each client has its own budget: one client over it locks out no other.
    const client = '198.51.100.1';
    assert.deepEqual([await get(f.url, BAD_KEY, client), await get(f.url, BAD_KEY, client), await get(f.url, BAD_KEY, client), await get(f.url, BAD_KEY, client)], [401, 401, 401, 429]);
    assert.equal(await get(f.url, `cck_BBBBBBBBBBBB_${'x'.repeat(43)}`, '198.51.100.2'), 401, 'another client behind the same proxy is not locked out');
    assert.equal(await upgrade(`cck_CCCCCCCCCCCC_${'x'.repeat(43)}`, client), 429, 'the WebSocket upgrade counts the same client address as HTTP');
    assert.equal(await upgrade(`cck_DDDDDDDDDDDD_${'x'.repeat(43)}`, '198.51.100.3'), 401);
    assert.equal(await upgrade(f.credentials!.apiKey, client), 101, 'a valid key upgrades from a client over its budget');
    assert.equal(await get(f.url, f.credentials!.apiKey, client), 200);

    // Guessing one key's secret from many addresses is limited by the key id.
    const guesses: number[] = [];
    for (let i = 0; i < 5; i++) guesses.push(await get(f.url, wrongSecret(f.credentials!.apiKey), `203.0.113.${i + 1}`));
    assert.deepEqual(guesses, [401, 401, 401, 429, 429], 'each guess from a fresh address, all at one key id');
    assert.equal(await get(f.url, f.credentials!.apiKey, '203.0.113.99'), 200, 'the key itself still works');

    // A client that is not a trusted proxy cannot pick its address with the header.
    const spoofed: number[] = [];
    for (let i = 0; i < 5; i++) spoofed.push(await get(direct.url, `cck_EEEEEEEEEEE${i}_${'x'.repeat(43)}`, `192.0.2.${i + 1}`));
    assert.deepEqual(spoofed, [401, 401, 401, 429, 429], 'X-Forwarded-For from an untrusted peer is ignored');
  } finally {
    await Promise.all([f.cleanup(), direct.cleanup()]);
  }
});

test('--insecure turns authentication off and says so loudly; TLS serves HTTPS and WSS to clients and workers that trust its CA', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-tls-'));
  const port = await freePort();
  const insecure = await spawnForemanProcess(port, ['--database', `sqlite:${join(dir, 'open.db')}`, '--insecure', '--log-level', 'warn']);
  try {
    assert.match(insecure.output(), /AUTHENTICATION IS OFF/);
    assert.equal((await fetch(`${insecure.url}/api/stats`)).status, 200);
  } finally {
    insecure.kill();
    await insecure.exited;
  }
  try {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    const tls = await startTestForeman({ tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) } });
    const ca = readFileSync(join(dir, 'cert.pem'));
    assert.match(tls.url, /^https:/);
    assert.match(tls.wsUrl, /^wss:/);
    const worker = new Worker({ foremanUrl: tls.wsUrl, workerId: 'tls-worker', allowCode: true, ca, logLevel: 'silent' });
    const client = new Client({ url: tls.url, ca });
    try {
      await worker.start();
      assert.deepEqual(await client.map((x: number) => x * x, [2, 3]), [4, 9]);
      assert.equal((await client.stats()).connected_workers, 1);
      await assert.rejects(fetch(`${tls.url}/health`), 'an untrusted certificate is refused without the CA');
    } finally {
      await client.close();
      await worker.stop();
      await tls.cleanup();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A Content-Security-Policy header as directive → sources. */
function cspOf(header: string | null): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const part of (header ?? '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) directives.set(name.toLowerCase(), sources);
  }
  return directives;
}

/** The `'sha256-…'` source that allows an inline script with this text. */
const sha256Source = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

test('every response carries a Content-Security-Policy that forbids framing and inline script, nosniff and a Referrer-Policy; only the join page may eval', async () => {
  const login = await call('POST', '/login', null, { key: keys.read });
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const job = await call('POST', '/api/jobs', keys.submit, { kind: 'tasks', tasks: [{ type: 'nobody.runs.this' }] });
  const pages = ['/', '/jobs', `/jobs/${job.json.id}`, '/workers', '/workers/nobody', '/login', '/join', '/docs/'];
  // Pages through the session; the API with a key and without; a 404; a page without a session.
  const others: [string, string | null][] = [['/api/stats', keys.read], ['/api/stats', null], ['/health', null], ['/openapi.json', null], ['/ui/style.css', null], ['/ui/nothing-here.js', null], ['/jobs', null]];
  const seen: number[] = [];
  for (const [path, key, page] of [...pages.map((p) => [p, null, true] as const), ...others.map(([p, k]) => [p, k, false] as const)]) {
    const res = await fetch(`${foreman.url}${path}`, { redirect: 'manual', headers: key ? { authorization: `Bearer ${key}` } : page ? { cookie } : {} });
    seen.push(res.status);
    const where = `${path} (${res.status})`;
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', where);
    assert.equal(res.headers.get('referrer-policy'), 'same-origin', where);
    const csp = cspOf(res.headers.get('content-security-policy'));
    assert.deepEqual(csp.get('frame-ancestors'), ["'none'"], `${where}: frame-ancestors`);
    assert.deepEqual(csp.get('object-src') ?? csp.get('default-src'), ["'none'"], `${where}: no plugins`);
    const scripts = csp.get('script-src') ?? [];
    assert.ok(!scripts.includes("'unsafe-inline'"), `${where}: no inline script`);
    assert.equal(scripts.includes("'unsafe-eval'"), path === '/join', `${where}: eval only where shipped functions run`);
    assert.ok(!(csp.get('style-src') ?? []).includes("'unsafe-inline'"), `${where}: no inline style`);
    if (!page) continue;
    assert.equal(res.status, 200, where);
    const html = await res.text();
    // What is inline is allowed by its hash, one by one; the login page has nothing inline.
    const inline = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    for (const text of inline) assert.ok(scripts.includes(sha256Source(text)), `${where}: the inline script is allowed by its hash`);
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, `${where}: no inline style or handler`);
    if (path === '/login') assert.deepEqual(inline, [], 'the login page has no inline script');
  }
  assert.ok(seen.includes(401) && seen.includes(404) && seen.includes(302), `refusals carry them too: ${seen.join(', ')}`);
});

test('the redirect to the login page carries a path of this site only', async () => {
  const plain = await call('GET', '/jobs/abc?state=failed', null);
  assert.equal(plain.status, 302);
  assert.equal(plain.headers.get('location'), `/login?next=${encodeURIComponent('/jobs/abc?state=failed')}`);
  // A request line may carry a whole URL (absolute form); the redirect keeps only its path.
  const { port } = new URL(foreman.url);
  for (const target of ['http://evil.example/jobs?state=failed', 'http://evil.example//evil.example/']) {
    const socket = connect(Number(port), '127.0.0.1');
    socket.end(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    let answer = '';
    socket.on('data', (d) => { answer += d; });
    await once(socket, 'close');
    const location = /^location: (.*)$/im.exec(answer)?.[1]?.trim();
    if (location === undefined) continue; // not a page route: refused, not redirected
    const next = new URL(location, foreman.url).searchParams.get('next')!;
    assert.match(next, /^\/(?![/\\])/, `${target}: next is a path of this site, not ${next}`);
    assert.equal(new URL(next, foreman.url).origin, new URL(foreman.url).origin, `${target}: ${next}`);
  }
});

test("a revoked key's schedules stop firing: the foreman pauses them and says why", async () => {
  const db = ['--database', foreman.databaseUrl];
  const key = await cli(['key', 'create', '--scopes', 'submit', '--name', 'schedules then revoked', ...db]);
  const keyId = key.split('_')[1];
  const made = await call('POST', '/api/schedules', key, { id: 'sec-revoked-owner', every: '1s', job: { kind: 'tasks', tasks: [{ type: 'nobody.runs.this' }] } });
  assert.equal(made.status, 201);
  await waitFor(async () => ((await call('GET', '/api/schedules/sec-revoked-owner', keys.admin)).json.recent_runs ?? []).length > 0, { message: 'the schedule fires while its key is valid' });
  await cli(['key', 'revoke', keyId, ...db]);
  const paused = await waitFor(async () => {
    const s = (await call('GET', '/api/schedules/sec-revoked-owner', keys.admin)).json;
    return s.paused ? s : null;
  }, { message: 'the schedule is paused once its key is revoked' });
  assert.match(paused.pause_note, new RegExp(`API key ${keyId} that owns it was revoked`));
  const fired = paused.recent_runs.length;
  // Paused: nothing more fires (checked after more than one tick's time has passed).
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal((await call('GET', '/api/schedules/sec-revoked-owner', keys.admin)).json.recent_runs.length, fired);
});
