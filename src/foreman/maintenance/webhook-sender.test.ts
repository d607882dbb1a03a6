import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SqliteStore } from '../../store/sqlite/sqlite-store.ts';
import type { WebhookDeliveryRecord } from '../../store/store.ts';
import { ForemanMetrics } from '../shared/foreman-metrics.ts';
import { WebhookSender, signWebhook } from './webhook-sender.ts';

test('signatures match the Standard Webhooks test vector', () => {
  assert.equal(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'),
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A store with one ended job per URL, and a sender on it (two attempts, no wait between them). */
async function setUp(urls: string[]) {
  const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'cc-hooks-')), 'test.db') });
  await store.migrate();
  const ids: string[] = [];
  for (const [i, url] of urls.entries()) {
    const id = `hook-job-${i}`;
    await store.jobInsert({ job: { id, kind: 'tasks', name: null, priority: 'normal', argCount: null, chunkSize: null, code: null, timeoutMs: null, maxAttempts: 1,
      idempotencyKey: null, metadata: null, owner: null, retentionMs: 60_000, label: 'x', queueTimeoutMs: null, runOn: null, webhookUrl: url },
    tasks: [{ id: `${id}.0`, index: 0, kind: 'named', type: 'x', input: null, priority: 'normal', maxAttempts: 1, timeoutMs: null }], now: Date.now() });
    await store.jobCancel({ jobId: id, now: Date.now() });
    ids.push(id);
  }
  const sender = new WebhookSender({ store, metrics: new ForemanMetrics(), log: pino({ level: 'silent' }), signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    jobView: async (jobId) => ({ id: jobId } as never) }, { attempts: 2, backoff: { baseMs: 1, maxMs: 1 }, timeoutMs: 5_000, concurrency: 4, safetySweepMs: 50 });
  return { store, sender, ids };
}

async function settled(store: SqliteStore, jobId: string): Promise<WebhookDeliveryRecord> {
  for (let i = 0; i < 2_000; i++) {
    const [d] = await store.webhookDeliveryList(jobId);
    if (d && d.state !== 'pending') return d;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the delivery of ${jobId} did not settle`);
}

test('a redirect is not followed and counts as a failure; after the last attempt the delivery is given up; an endless answer is not read to its end', async () => {
  let redirectedTo = 0;
  const target = await listen((_req, res) => { redirectedTo++; res.writeHead(204).end(); });
  const redirecting = await listen((req, res) => { req.resume(); res.writeHead(302, { location: target.url }).end(); });
  // 200, then a body that never ends: only the first few KiB are read.
  const endless = await listen((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const pump = () => { while (res.write(chunk)) { /* fill the socket */ } };
    res.on('drain', pump);
    pump();
  });
  const { store, sender, ids: [redirectJob, endlessJob] } = await setUp([redirecting.url, endless.url]);
  try {
    await sender.start();
    const r = await settled(store, redirectJob);
    assert.deepEqual([r.state, r.attempts, r.lastStatus], ['failed', 2, 302]);
    assert.match(r.lastError ?? '', /HTTP 302 \(redirects are not followed: give the final URL\)/);
    assert.equal(redirectedTo, 0, 'the redirect target was never called');
    const e = await settled(store, endlessJob);
    assert.deepEqual([e.state, e.attempts, e.lastStatus, e.lastError], ['delivered', 1, 200, null]);
  } finally {
    await sender.stop();
    await store.close();
    for (const s of [target, redirecting, endless]) { s.server.closeAllConnections(); s.server.close(); }
  }
});

test('stopping cuts an attempt waiting on a silent receiver short; it is recorded and left to be tried again', async () => {
  let got = 0;
  const silent = await listen((req) => { req.resume(); got++; });
  const { store, sender, ids: [jobId] } = await setUp([silent.url]);
  try {
    await sender.start();
    for (let i = 0; i < 2_000 && got === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got, 1, 'the receiver got the attempt');
    await sender.stop();
    const [d] = await store.webhookDeliveryList(jobId);
    assert.deepEqual([d.state, d.attempts, d.attemptLog.length, d.lastError], ['pending', 1, 1, 'the foreman stopped before an answer came']);
    assert.ok(d.nextAttemptAt !== null);
  } finally {
    await store.close();
    silent.server.closeAllConnections();
    silent.server.close();
  }
});
