/**
 * Webhooks: a job's end is posted to its URL (or its key's), signed as Standard Webhooks sign,
 * retried with backoff until the receiver accepts, recorded with every attempt (REST, SDK,
 * metrics), and a receiver that never answers holds up nothing else. Bad URLs are refused on
 * every way in. Receivers are local HTTP servers on 127.0.0.1.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const pgUrl = await testPostgresUrl();

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { env: process.env, timeout: 60_000 });
    return { code: 0, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: (e.stdout ?? '').trim(), stderr: (e.stderr ?? '').trim() };
  }
}

/** A delivery as a receiver saw it: its headers, its body, and whether its signature held. */
interface Received { id: string; timestamp: number; body: string; signed: boolean; payload: any }

/**
 * Verify a delivery the way a receiver would, written here from the Standard Webhooks text and
 * not with the foreman's own code: HMAC-SHA256 under the base64-decoded `whsec_` secret of
 * `<id>.<timestamp>.<body>`, compared in constant time with each `v1,` signature given.
 */
function verify(secret: string, req: IncomingMessage, body: string): boolean {
  const id = String(req.headers['webhook-id'] ?? '');
  const ts = String(req.headers['webhook-timestamp'] ?? '');
  const given = String(req.headers['webhook-signature'] ?? '');
  if (!id || !/^\d+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${id}.${ts}.${body}`).digest();
  return given.split(' ').some((s) => {
    const [version, sig] = s.split(',');
    const bytes = Buffer.from(sig ?? '', 'base64');
    return version === 'v1' && bytes.length === expected.length && timingSafeEqual(bytes, expected);
  });
}

/** A local receiver: `answer` decides each delivery's status (or null: never answer). */
async function receiver(secret: () => string, answer: (n: number, r: Received) => number | null): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r: Received = { id: String(req.headers['webhook-id']), timestamp: Number(req.headers['webhook-timestamp']), body, signed: verify(secret(), req, body), payload: JSON.parse(body) };
      got.push(r);
      const status = r.signed ? answer(got.length, r) : 401;
      if (status !== null) res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 300 ? `not now (${got.length})` : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/crowdcompute`, got, server };
}

for (const store of ['sqlite', 'postgres'] as const) {
describe(`webhooks on ${store}`, { skip: store === 'postgres' && !pgUrl ? 'PostgreSQL is not reachable' : false }, () => {
  let foreman: TestForeman;
  let client: Client;
  let worker: Worker;
  let secret = '';
  const servers: Server[] = [];

  before(async () => {
    // Retries come quickly here; the timeout is long, so a receiver that never answers stays in flight for the whole test.
    foreman = await startTestForeman({ webhookBackoffMs: 50, webhookTimeoutMs: 120_000, webhookConcurrency: 2, heartbeatIntervalMs: 200,
      ...(store === 'postgres' ? { database: `${pgUrl}?schema=webhooks_${Date.now()}` } : {}) });
    client = new Client({ url: foreman.url });
    worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: `hooks-${store}`, maxConcurrentTasks: 4, logLevel: 'silent' })
      .handle('hook.*', async (t) => ({ echoed: t.input }));
    await worker.start();
    // The admin's way to the signing secret: the CLI, from the deployment's secret.
    const r = await cli(['webhook', 'secret', '--database', foreman.databaseUrl]);
    assert.equal(r.code, 0, r.stderr);
    secret = r.stdout;
    assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  });

  after(async () => {
    for (const s of servers) s.closeAllConnections();
    await client.close();
    await worker.stop({ drainTimeoutMs: 0 });
    await foreman.cleanup();
    for (const s of servers) s.close();
  });

  const rest = async (path: string, init?: { method: string; body: unknown }) => {
    const res = await foreman.fetch(path, init ? { method: init.method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) } : {});
    return { status: res.status, body: await res.json() as any };
  };

  test('a receiver that fails twice gets the signed end a third time and accepts it; the job shows the three attempts', async () => {
    const hook = await receiver(() => secret, (n) => (n <= 2 ? 500 : 204));
    servers.push(hook.server);
    const handle = await client.submit('hook.echo', { n: 7 }, { webhook: hook.url });
    assert.deepEqual(await handle.result(), { echoed: { n: 7 } });

    const job = await waitFor(async () => {
      const j = await rest(`/api/jobs/${handle.jobId}`);
      return j.body.webhook?.state === 'delivered' ? j.body : null;
    }, { timeoutMs: 30_000, message: 'the delivery is recorded as delivered' });
    assert.equal(hook.got.length, 3, 'two failures, then the accepted one');
    assert.ok(hook.got.every((r) => r.signed), 'every attempt carries a valid signature over its body and timestamp');
    assert.equal(new Set(hook.got.map((r) => r.id)).size, 1, 'one webhook-id across the retries of one delivery');
    const last = hook.got[2].payload;
    assert.equal(last.event, 'job.finished');
    assert.equal(last.status, 'completed');
    assert.equal(last.job.id, handle.jobId);
    assert.equal(last.job.status, 'completed');
    assert.equal(last.job.webhook_url, hook.url);

    assert.equal(job.webhook_url, hook.url);
    assert.equal(job.webhook.url, hook.url);
    assert.equal(job.webhook.attempts, 3);
    assert.deepEqual(job.webhook.attempt_log.map((a: any) => a.status), [500, 500, 204]);
    assert.equal(job.webhook.attempt_log[0].error, 'HTTP 500', 'the status, never the body the receiver sent');
    assert.equal(job.webhook.last_error, null);
    assert.ok(job.webhook.finished_at);

    // The SDK reads the same, and the list of deliveries has the one.
    const info = await client.getJob(handle.jobId);
    assert.equal(info.webhook?.state, 'delivered');
    const list = await rest(`/api/jobs/${handle.jobId}/webhook-deliveries`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((d: any) => [d.state, d.attempts, d.job_status]), [['delivered', 3, 'completed']]);
    assert.deepEqual((await client.webhookDeliveries(handle.jobId)).map((d) => [d.state, d.attempts, d.jobStatus, d.attemptLog.length]), [['delivered', 3, 'completed', 3]]);

    // `crowdcompute job <id>` says where it went and how it went.
    const shown = await cli(['job', handle.jobId, '--foreman', foreman.url]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`webhook\\s+${hook.url.replace(/[.]/g, '\\.')}: delivered .* after 3 attempts`));

    const metrics = await (await foreman.fetch('/metrics')).text();
    assert.match(metrics, /crowdcompute_webhook_deliveries_total\{outcome="retried"\} [2-9]/);
    assert.match(metrics, /crowdcompute_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
  });

  test("a key's webhook is used for its jobs that name none; a job's own wins", async () => {
    const keyHook = await receiver(() => secret, () => 200);
    const ownHook = await receiver(() => secret, () => 200);
    servers.push(keyHook.server, ownHook.server);
    const created = await cli(['key', 'create', '--scopes', 'submit,read', '--name', 'hooked', '--webhook', keyHook.url, '--database', foreman.databaseUrl]);
    assert.equal(created.code, 0, created.stderr);
    const keyed = new Client({ url: foreman.url, apiKey: created.stdout });
    try {
      const plain = await keyed.submit('hook.plain', { k: 1 });
      const own = await keyed.submit('hook.own', { k: 2 }, { webhook: ownHook.url });
      await Promise.all([plain.result(), own.result()]);
      await waitFor(() => keyHook.got.length >= 1 && ownHook.got.length >= 1, { timeoutMs: 30_000, message: 'both receivers were called' });
      assert.deepEqual(keyHook.got.map((r) => r.payload.job.id), [plain.jobId]);
      assert.deepEqual(ownHook.got.map((r) => r.payload.job.id), [own.jobId]);
      assert.ok(keyHook.got[0].signed);
      const view = await waitFor(async () => { const j = await keyed.getJob(plain.jobId); return j.webhook?.state === 'delivered' ? j : null; });
      assert.equal(view.webhookUrl, null, 'the job named none');
      assert.equal(view.webhook?.url, keyHook.url);
    } finally {
      await keyed.close();
    }
  });

  test("a key's webhook over REST: the key sets its own, another key may not, admin removes it, bad URLs and unknown ids are refused", async () => {
    const hook = await receiver(() => secret, () => 204);
    servers.push(hook.server);
    const created = await cli(['key', 'create', '--scopes', 'submit,read', '--name', 'self-hooked', '--database', foreman.databaseUrl]);
    const other = await cli(['key', 'create', '--scopes', 'submit,read', '--name', 'bystander', '--database', foreman.databaseUrl]);
    assert.equal(created.code + other.code, 0, created.stderr + other.stderr);
    const id = created.stdout.split('_')[1];
    const keyed = new Client({ url: foreman.url, apiKey: created.stdout });
    const bystander = new Client({ url: foreman.url, apiKey: other.stdout });
    try {
      assert.equal((await keyed.getKey(id)).webhookUrl, null);
      const set = await keyed.setKeyWebhook(id, hook.url);
      assert.deepEqual([set.id, set.name, set.scopes, set.webhookUrl], [id, 'self-hooked', ['submit', 'read'], hook.url]);
      const job = await keyed.submit('hook.rest', { r: 1 });
      await job.result();
      await waitFor(() => hook.got.length === 1, { timeoutMs: 30_000, message: 'the webhook set over REST is called' });
      assert.equal(hook.got[0].payload.job.id, job.jobId);
      assert.ok(hook.got[0].signed);

      // Another key that is not admin is refused, whether the id exists or not.
      for (const target of [id, 'nosuchkey']) {
        await assert.rejects(bystander.setKeyWebhook(target, hook.url), (err: any) => {
          assert.equal(err.code, 'CC_ERR_FORBIDDEN');
          assert.match(err.message, /a key may read and change only itself .*another key needs the "admin" scope/);
          return true;
        });
      }
      await assert.rejects(bystander.getKey(id), /CC_ERR_FORBIDDEN/);
      await assert.rejects(keyed.setKeyWebhook(id, 'ftp://example.com/x'), (err: any) => {
        assert.equal(err.code, 'CC_ERR_BAD_MESSAGE');
        assert.match(err.message, /url: must be http or https, not ftp:/);
        return true;
      });
      await assert.rejects(client.getKey('nosuchkey'), /CC_ERR_KEY_NOT_FOUND: no API key has the id nosuchkey/);

      // The admin removes it: the key's next job is announced nowhere.
      assert.equal((await client.removeKeyWebhook(id)).webhookUrl, null);
      const listed = await cli(['key', 'list', '--json', '--database', foreman.databaseUrl]);
      assert.equal(JSON.parse(listed.stdout).find((k: any) => k.id === id).webhook_url, null, 'the database has it removed');
      const quiet = await keyed.submit('hook.rest', { r: 2 });
      await quiet.result();
      // The delivery would be written with the job's end, in one transaction: an ended job without one has none.
      assert.equal((await keyed.getJob(quiet.jobId)).webhook, null);
      assert.equal(hook.got.length, 1);
    } finally {
      await Promise.all([keyed.close(), bystander.close()]);
    }
  });

  test('a bad webhook URL is refused on every way in, naming the problem', async () => {
    await assert.rejects(client.submit('hook.x', {}, { webhook: 'ftp://example.com/x' }), (err: any) => {
      assert.equal(err.code, 'CC_ERR_BAD_MESSAGE');
      assert.match(err.message, /webhook: must be http or https, not ftp:/);
      return true;
    });
    const rejected = await rest('/api/jobs', { method: 'POST', body: { kind: 'tasks', tasks: [{ type: 'hook.x' }], webhook: 'not a url' } });
    assert.equal(rejected.status, 400);
    assert.equal(rejected.body.code, 'CC_ERR_INVALID_JOB');
    assert.match(rejected.body.message, /webhook: is not a URL/);
    const long = await rest('/task/submit', { method: 'POST', body: { payload: { function: 'hook.x' }, webhook: `https://example.com/${'a'.repeat(2_000)}` } });
    assert.equal(long.status, 400);
    assert.match(long.body.message, /webhook: is 2020 characters; at most 2000 are accepted/);

    const bySubmit = await cli(['submit', 'hook.x', '{}', '--webhook', 'javascript:alert(1)', '--foreman', foreman.url]);
    assert.notEqual(bySubmit.code, 0);
    assert.match(bySubmit.stderr, /--webhook must be http or https, not javascript:/);
    const byKey = await cli(['key', 'create', '--scopes', 'read', '--webhook', 'file:///etc/passwd', '--database', foreman.databaseUrl]);
    assert.notEqual(byKey.code, 0);
    assert.match(byKey.stderr, /--webhook must be http or https, not file:/);
  });

  // Last: its silent receiver keeps both of the sender's slots for the rest of the file.
  test('receivers that never answer hold up nothing: with every send slot taken, another job runs and ends, and the next delivery waits its turn', async () => {
    const silent = await receiver(() => secret, () => null);
    servers.push(silent.server);
    const hung = await Promise.all([1, 2, 3].map((h) => client.submit('hook.hung', { h }, { webhook: silent.url })));
    await Promise.all(hung.map((h) => h.result()));
    await waitFor(() => silent.got.length === 2, { timeoutMs: 30_000, message: 'the silent receiver got two deliveries, one per slot' });

    const other = await client.submit('hook.other', { o: 1 });
    assert.deepEqual(await other.result(), { echoed: { o: 1 } });
    const views = await Promise.all(hung.map(async (h) => (await rest(`/api/jobs/${h.jobId}`)).body.webhook));
    assert.ok(views.every((w) => w.state === 'pending' && w.attempt_log.length === 0), 'no answer has come for any');
    assert.deepEqual(views.map((w) => w.attempts).sort(), [0, 1, 1], 'two in flight (one per slot), the third waiting for a slot');
    assert.equal(silent.got.length, 2);
  });
});
}

test('--webhook-host keeps webhooks to the hosts listed: others are refused at submission, and a key\'s to another host is never called', async () => {
  const inside = await receiver(() => '', () => 204);
  const limited = await startTestForeman({ webhookHosts: ['hooks.example.com', '*.example.org'], webhookBackoffMs: 50 });
  const admin = new Client({ url: limited.url });
  try {
    await assert.rejects(admin.submit('hook.x', {}, { webhook: inside.url }), /webhook host 127\.0\.0\.1 is not one this foreman calls \(--webhook-host hooks\.example\.com, \*\.example\.org\)/);
    const created = await cli(['key', 'create', '--scopes', 'submit,read', '--webhook', inside.url, '--database', limited.databaseUrl]);
    assert.equal(created.code, 0, created.stderr);
    const keyed = new Client({ url: limited.url, apiKey: created.stdout });
    try {
      // A listed host is accepted (the job never ends here, so nothing is sent off this machine).
      const listed = await keyed.submit('hook.nobody', {}, { webhook: 'https://a.example.org/hook' });
      assert.equal((await keyed.getJob(listed.jobId)).webhookUrl, 'https://a.example.org/hook');
      const other = await keyed.submit('hook.nobody', {});
      await keyed.cancel(other.jobId);
      const given = await waitFor(async () => { const j = await keyed.getJob(other.jobId); return j.webhook?.state === 'failed' ? j.webhook : null; });
      assert.equal(given.attempts, 1, 'given up at once, not retried');
      assert.match(given.last_error ?? '', /host 127\.0\.0\.1 is not one this foreman calls \(--webhook-host\)/);
      assert.equal(inside.got.length, 0, 'the host not listed was never called');
      // Set over REST, a key's webhook is held to the same hosts, and refused at once.
      const id = created.stdout.split('_')[1];
      await assert.rejects(keyed.setKeyWebhook(id, inside.url), /CC_ERR_BAD_MESSAGE: webhook host 127\.0\.0\.1 is not one this foreman calls \(--webhook-host hooks\.example\.com, \*\.example\.org\)/);
      assert.equal((await keyed.setKeyWebhook(id, 'https://hooks.example.com/cc')).webhookUrl, 'https://hooks.example.com/cc');
    } finally {
      await keyed.close();
    }
  } finally {
    await admin.close();
    await limited.cleanup();
    inside.server.close();
  }
});
