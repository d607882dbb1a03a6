/**
 * Traces through a browser tab: a tab's bundle has no OpenTelemetry, so it makes no `execute`
 * span, but it sends each task's trace context back with the outcome as it came. The foreman's
 * `result commit` span then joins the job's trace as a child of that task's `dispatch` span,
 * as with a Python worker. The foreman is the CLI's, started with OTEL_EXPORTER_OTLP_ENDPOINT
 * at a collector in this process; the job is a REST submission with a `traceparent` header, so
 * its trace id is known in advance.
 *
 * The foreman exports only once a minute here: its spans reach the collector by its flush when
 * it stops (SIGTERM), so once it has exited every span it made is there to look at.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '../../src/client/index.ts';
import { freePort, spawnForemanProcess, waitFor, type ChildForeman } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext } from '../support/browser.ts';
import { Collector, type ReceivedSpan } from '../support/otlp-collector.ts';

test('a browser tab carries a task\'s trace context back: the foreman\'s result commit hangs under its dispatch', { skip: browserSkip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-tab-traces-'));
  const collector = new Collector();
  await collector.start();
  let foreman: ChildForeman | null = null;
  const browser = await launchBrowser();
  try {
    foreman = await spawnForemanProcess(await freePort(), ['--database', `sqlite:${join(dir, 'cc.db')}`, '--insecure'],
      { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '60000' });
    const client = new Client({ url: foreman.url });

    // With authentication off, the join page itself admits a tab.
    const page = await (await newContext(browser)).newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${foreman.url}/join`);
    await waitFor(async () => /Connected|Working/.test((await page.locator('[data-testid=status]').textContent()) ?? '') || null,
      { timeoutMs: 30_000, message: 'the tab joins' });

    // A traced map job for tabs only, one argument a task: three tasks, three dispatches, three commits.
    const traceId = '5b8efff798038103d269b633813fc60c';
    const res = await fetch(`${foreman.url}/api/jobs`, {
      method: 'POST', headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-eee19b7ec3c1b174-01` },
      body: JSON.stringify({ kind: 'map', code: '(x) => x * 2', args: [1, 2, 3], chunk_size: 1, run_on: 'browser' }),
    });
    assert.equal(res.status, 201);
    const jobId = ((await res.json()) as { id: string }).id;
    await waitFor(async () => (await client.getJob(jobId)).status === 'completed', { timeoutMs: 30_000, message: 'the tab runs the job' });
    assert.deepEqual((await client.getJobOutcome(jobId)).results, [2, 4, 6]);
    assert.equal((await client.getJob(jobId)).traceId, traceId);
    const tasks = await client.getJobTasks(jobId);
    assert.equal(tasks.length, 3);
    assert.ok(tasks.every((t) => t.workerId?.startsWith('browser-')), `the tab ran every task: ${tasks.map((t) => t.workerId).join(', ')}`);
    assert.deepEqual(errors, [], 'no errors in the page');
    await client.close();

    // The tab leaves, then the foreman stops and flushes its spans.
    await browser.close();
    foreman.kill('SIGTERM');
    assert.equal(await foreman.exited, 0, foreman.output());
    const byTask = (taskId: string) => (s: ReceivedSpan) => s.attributes['crowdcompute.task.id'] === taskId;
    await waitFor(() => tasks.every((t) => collector.spans.some((s) => s.traceId === traceId && s.name === 'dispatch' && byTask(t.taskId)(s))),
      { timeoutMs: 30_000, message: 'the collector has the dispatch span of every task' });

    for (const t of tasks) {
      const dispatch = collector.one(traceId, 'crowdcompute-foreman', 'dispatch', byTask(t.taskId));
      const commit = collector.one(traceId, 'crowdcompute-foreman', 'result commit', byTask(t.taskId));
      assert.equal(commit.parentSpanId, dispatch.spanId, 'the result commit is a child of the same task\'s dispatch');
      assert.equal(commit.attributes['crowdcompute.worker.id'], t.workerId);
      assert.equal(commit.attributes['crowdcompute.task.status'], 'completed');
    }
  } finally {
    await browser.close();
    foreman?.kill('SIGKILL');
    await collector.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
