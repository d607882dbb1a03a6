/**
 * The webhooks part of the conformance suite: a job's end writes its delivery in the same
 * transaction, and each attempt is claimed by one claimer only. Registered by
 * runStoreConformance, inside its describe (a fresh store per test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobChange, JobInsertParams, Store, WebhookAttempt } from '../store.ts';

let counter = 0;

function job(over: { webhookUrl?: string | null; owner?: string | null } = {}): JobInsertParams {
  const id = `whjob-${process.pid}-${++counter}`;
  return {
    job: { id, kind: 'tasks', name: null, priority: 'normal', argCount: null, chunkSize: null, code: null, timeoutMs: null, maxAttempts: 1,
      idempotencyKey: null, metadata: null, owner: over.owner ?? null, retentionMs: 60_000, label: 'hook.x', queueTimeoutMs: null, runOn: null,
      webhookUrl: over.webhookUrl ?? null },
    tasks: [{ id: `${id}.0`, index: 0, kind: 'named', type: 'hook.x', input: null, priority: 'normal', maxAttempts: 1, timeoutMs: null }],
    now: Date.now(),
  };
}

/** Run the job's one task to completion on worker w1; what the commit said of the job's end. */
async function complete(store: Store, jobId: string, now: number): Promise<JobChange | undefined> {
  const [t] = await store.taskClaimMany({ workerId: 'w1', patterns: ['hook.*'], allowCode: false, limit: 10, leaseMs: 30_000, now, jobs: [{ jobId, limit: 1 }] });
  assert.ok(t, 'the task is claimed');
  const r = await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: t.attempt, workerId: 'w1', status: 'completed', result: 1 }], now });
  assert.equal(r.recorded.length, 1);
  return r.jobs.find((j) => j.jobId === jobId);
}

const attempt = (n: number, at: number, status: number | null, error: string | null): WebhookAttempt => ({ attempt: n, at, status, error, durationMs: 5 });

/** Register the webhook cases; `store()` is the fresh store of the running test. */
export function webhookConformance(store: () => Store): void {
  test('webhooks: a job that ends writes one pending delivery to its URL, or its key\'s default; none without either', async () => {
    const s = store();
    const now = Date.now();
    await s.credentialInsert({ id: 'whkey1', kind: 'key', name: null, scopes: ['submit'], workerId: null, secretHash: 'x', createdAt: now, webhookUrl: 'https://key.example/hook' });
    await s.credentialInsert({ id: 'whkey2', kind: 'key', name: null, scopes: ['submit'], workerId: null, secretHash: 'y', createdAt: now });
    const own = (await s.jobInsert(job({ webhookUrl: 'http://127.0.0.1:9/own', owner: 'whkey1' }))).job;
    const byKey = (await s.jobInsert(job({ owner: 'whkey1' }))).job;
    const none = (await s.jobInsert(job({ owner: 'whkey2' }))).job;
    const cancelled = (await s.jobInsert(job({ webhookUrl: 'http://127.0.0.1:9/c' }))).job;
    assert.equal(own.webhookUrl, 'http://127.0.0.1:9/own');
    assert.deepEqual(await s.webhookDeliveryList(own.id), [], 'nothing before the job ends');
    assert.equal(await s.webhookNextDue(), null);

    // The commit that ends a job says whether it wrote a delivery (the sender looks only then).
    const ends = [];
    for (const j of [own, byKey, none]) ends.push(await complete(s, j.id, now));
    assert.deepEqual(ends.map((c) => c?.webhook), [true, true, false]);
    await s.jobCancel({ jobId: cancelled.id, now });

    const [d] = await s.webhookDeliveryList(own.id);
    assert.equal(d.url, 'http://127.0.0.1:9/own', "the job's own URL wins over its key's default");
    assert.deepEqual([d.state, d.jobState, d.attempts, d.attemptLog], ['pending', 'completed', 0, []]);
    assert.ok(d.nextAttemptAt !== null && d.nextAttemptAt <= Date.now(), 'due at once');
    assert.equal((await s.webhookDeliveryList(byKey.id))[0]?.url, 'https://key.example/hook');
    assert.deepEqual(await s.webhookDeliveryList(none.id), []);
    assert.deepEqual((await s.webhookDeliveryList(cancelled.id)).map((x) => x.jobState), ['cancelled']);

    // The key's default can be changed and removed; a token has none to set.
    assert.equal((await s.credentialSetWebhook({ id: 'whkey2', webhookUrl: 'https://k2.example/' }))?.webhookUrl, 'https://k2.example/');
    assert.equal((await s.credentialGet('whkey2'))?.webhookUrl, 'https://k2.example/');
    assert.equal(await s.credentialSetWebhook({ id: 'nope', webhookUrl: null }), null);
  });

  test('webhooks: each attempt is claimed once, a lost claim is taken again, and a late outcome of an old attempt is refused', async () => {
    const s = store();
    const jobs = [];
    for (let i = 0; i < 6; i++) jobs.push((await s.jobInsert(job({ webhookUrl: `http://127.0.0.1:9/${i}` }))).job);
    for (const j of jobs) await s.jobCancel({ jobId: j.id, now: Date.now() });
    const now = Date.now() + 1_000;

    // Two claimers at once: every delivery goes to exactly one of them.
    const [a, b] = await Promise.all([s.webhookClaimDue({ now, limit: 4, leaseMs: 60_000 }), s.webhookClaimDue({ now, limit: 4, leaseMs: 60_000 })]);
    assert.ok(a.length <= 4 && b.length <= 4, `each claim takes at most its limit (took ${a.length} and ${b.length})`);
    const ids = [...a, ...b].map((c) => c.id);
    assert.equal(ids.length, 6, 'all six claimed');
    assert.equal(new Set(ids).size, 6, 'none twice');
    assert.ok([...a, ...b].every((c) => c.attempts === 1 && c.jobState === 'cancelled'));
    assert.deepEqual(await s.webhookClaimDue({ now, limit: 10, leaseMs: 60_000 }), [], 'in flight: not due again');
    assert.equal(await s.webhookNextDue(), now + 60_000, 'the earliest a lost claim is taken again');

    const [first, second, third] = [...a, ...b].sort((x, y) => x.id - y.id);
    // Failed; tried again later.
    assert.equal(await s.webhookRecordAttempt({ id: first.id, attempt: attempt(1, now, 500, 'HTTP 500'), next: { state: 'pending', retryAt: now + 10 } }), true);
    assert.equal(await s.webhookRecordAttempt({ id: first.id, attempt: attempt(1, now, 500, 'HTTP 500'), next: { state: 'pending', retryAt: now + 10 } }), false, 'recorded once');
    // Delivered.
    assert.equal(await s.webhookRecordAttempt({ id: second.id, attempt: attempt(1, now, 204, null), next: { state: 'delivered' } }), true);
    // Given up.
    assert.equal(await s.webhookRecordAttempt({ id: third.id, attempt: attempt(1, now, null, 'timed out'), next: { state: 'failed' } }), true);

    const again = await s.webhookClaimDue({ now: now + 10, limit: 10, leaseMs: 60_000 });
    assert.deepEqual(again.map((c) => [c.id, c.attempts]), [[first.id, 2]]);
    // Its foreman goes away: the claim lapses and another takes attempt 3; attempt 2's late outcome is refused.
    const lapsed = await s.webhookClaimDue({ now: now + 10 + 60_000, limit: 10, leaseMs: 60_000 });
    assert.ok(lapsed.some((c) => c.id === first.id && c.attempts === 3));
    assert.equal(await s.webhookRecordAttempt({ id: first.id, attempt: attempt(2, now, 204, null), next: { state: 'delivered' } }), false);
    assert.equal(await s.webhookRecordAttempt({ id: first.id, attempt: attempt(3, now, 200, null), next: { state: 'delivered' } }), true);

    const [f] = await s.webhookDeliveryList(jobs.find((j) => j.id === first.jobId)!.id);
    assert.deepEqual([f.state, f.attempts, f.lastStatus, f.lastError, f.nextAttemptAt], ['delivered', 3, 200, null, null]);
    assert.deepEqual(f.attemptLog.map((x) => [x.attempt, x.status, x.error]), [[1, 500, 'HTTP 500'], [3, 200, null]]);
    assert.ok(f.finishedAt !== null);
    const [t] = await s.webhookDeliveryList(third.jobId);
    assert.deepEqual([t.state, t.lastStatus, t.lastError], ['failed', null, 'timed out']);
    assert.deepEqual(await s.webhookClaimDue({ now: now + 10 * 60_000, limit: 10, leaseMs: 60_000 }).then((r) => r.filter((c) => [first.id, second.id, third.id].includes(c.id))), [],
      'finished deliveries are never claimed again');
  });

  test('webhooks: a claim takes at most its limit, earliest first', async () => {
    const s = store();
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push((await s.jobInsert(job({ webhookUrl: `http://127.0.0.1:9/l${i}` }))).job);
    for (const j of jobs) await s.jobCancel({ jobId: j.id, now: Date.now() });
    const now = Date.now() + 1_000;
    const first = await s.webhookClaimDue({ now, limit: 2, leaseMs: 60_000 });
    assert.deepEqual(first.map((c) => c.jobId), jobs.slice(0, 2).map((j) => j.id));
    assert.deepEqual((await s.webhookClaimDue({ now, limit: 2, leaseMs: 60_000 })).map((c) => c.jobId), [jobs[2].id]);
  });

  test('webhooks: a retried job that ends again is announced again; pruning a job removes its deliveries', async () => {
    const s = store();
    const p = job({ webhookUrl: 'http://127.0.0.1:9/r' });
    p.job.retentionMs = 1;
    const { job: j } = await s.jobInsert(p);
    await s.jobCancel({ jobId: j.id, now: Date.now() });
    await s.jobRetry({ jobId: j.id, now: Date.now() });
    await s.jobCancel({ jobId: j.id, now: Date.now() });
    assert.equal((await s.webhookDeliveryList(j.id)).length, 2);
    await s.jobPrune({ now: Date.now() + 60_000, maxTasks: 1_000 });
    assert.equal(await s.jobGet(j.id), null);
    assert.deepEqual(await s.webhookDeliveryList(j.id), []);
  });
}
