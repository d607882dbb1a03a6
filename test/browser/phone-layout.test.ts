/**
 * Every dashboard page on a phone (390 × 844): nothing sticks out of the screen or out of its
 * card unless it sits in a box that scrolls sideways, every table wraps to its box (nothing cut
 * at the edge), and a job page's failed task shows its error and its Retry button without any
 * sideways scrolling. The same job page says how a task's attempts add up (lost with a
 * worker, failed, before a Retry) beside its max attempts, and names a map job's tasks by their
 * type, `map`, as the CLI and the REST API do, and the jobs list each job by its kind. The Workers page shows an idle worker seen after
 * it connected. Screenshots of each page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { Worker, type BatchHandler } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { RawSocket, startTestForeman, waitFor } from '../../src/testing/index.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import pipeline from '../../examples/pipeline/handlers.ts';
import { browserSkip, launchBrowser, screenshot, logIn } from '../support/browser.ts';

const ERROR = 'storage refused upload of holiday-photos/2026/IMG_20260714_183255_HDR_panorama.jpg: 503 Service Unavailable from bucket eu-west-1-archive';

/**
 * Elements that reach past the screen, or past the card (panel, table box, notice) they are
 * in, without a box between them that scrolls sideways (which lets a person reach them).
 */
function outside(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const name = (el: Element) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}`
      + ` "${(el.textContent ?? '').trim().slice(0, 40)}"`;
    const scrolls = (el: Element) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
    const found: string[] = [];
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      let inScroller = false;
      let card: Element | null = null;
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        if (scrolls(p)) { inScroller = true; break; }
        if (!card && p.matches('.card, .panel, .table-wrap, .notice, .join-card')) card = p;
      }
      if (inScroller) continue;
      if (r.right > width + 1 || r.left < -1) { found.push(`${name(el)} reaches ${Math.round(r.left)}..${Math.round(r.right)} px of a ${width} px screen`); continue; }
      if (card) {
        const c = card.getBoundingClientRect();
        if (r.right > c.right + 1) found.push(`${name(el)} reaches ${Math.round(r.right - c.right)} px past its card ${name(card)}`);
      }
    }
    if (document.documentElement.scrollWidth > width + 1) found.push(`the page is ${document.documentElement.scrollWidth} px wide on a ${width} px screen`);
    // A table cut at its box's edge hides columns (a header cut mid-word, an error, a button)
    // from anyone who does not think of swiping it: on a phone every table wraps to fit.
    for (const box of document.querySelectorAll('.table-wrap')) {
      if (box.scrollWidth > box.clientWidth + 1) found.push(`${name(box.querySelector('table') ?? box)} is ${box.scrollWidth} px wide in a ${box.clientWidth} px box: cut`);
    }
    return found;
  });
}

/**
 * Once the page is scrolled down to it (only down: nothing sideways, not even inside its table),
 * the element is on screen, inside its table's box, and what a finger at its middle touches.
 */
async function reachable(page: Page, selector: string): Promise<void> {
  await page.locator(selector).evaluate((el) => { window.scrollBy(0, el.getBoundingClientRect().top - innerHeight / 3); });
  const seen = await page.locator(selector).evaluate((el) => {
    const r = el.getBoundingClientRect();
    const box = el.closest('.table-wrap')!.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return { left: r.left, right: r.right, width: document.documentElement.clientWidth, boxLeft: box.left, boxRight: box.right, touched: hit === el || el.contains(hit) };
  });
  assert.ok(seen.left >= Math.max(0, seen.boxLeft) - 1 && seen.right <= Math.min(seen.width, seen.boxRight) + 1, `${selector} is on screen inside its table: ${JSON.stringify(seen)}`);
  assert.ok(seen.touched, `${selector} is not covered`);
}

test('the dashboard on a phone: every page and table fits its width; a failed task\'s error and Retry are reachable; attempts add up; map tasks are "map"', { skip: browserSkip, timeout: 240_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 200 });
  let release: () => void = () => {};
  const held = new Promise<void>((r) => { release = r; });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'phone-test-worker-with-a-long-name', maxConcurrentTasks: 8, allowCode: true, logLevel: 'silent' })
    .handle('upload.flaky', async () => { throw new Error(ERROR); })
    .handle('hold.on', async () => { await held; return 'done'; });
  for (const [pattern, h] of Object.entries(pipeline)) worker.handle(pattern, h as BatchHandler);
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  const raw = await RawSocket.open(foreman.wsUrl);
  try {
    // The failing task's first attempt goes to a worker that vanishes with it (lost), the second
    // fails on the real worker (max attempts 1), a Retry by hand fails it a third time.
    raw.send({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'vanishing', capacity: 1, patterns: ['upload.*'], allowCode: false, running: [] });
    await raw.next((m) => m.type === 'welcome');
    const failing = await client.submitMany([{ type: 'upload.flaky', input: 'a.jpg' }, { type: 'hold.on', input: 1 }], { name: 'uploads from the holiday with a long name' });
    await raw.next((m) => m.type === 'assign_tasks');
    await raw.close();
    await worker.start();
    await waitFor(async () => (await client.getJob(failing.id)).failedTasks === 1 || null, { timeoutMs: 30_000, message: 'the upload fails' });
    await client.retry(failing.id);
    await waitFor(async () => (await client.getJob(failing.id)).failedTasks === 1 || null, { timeoutMs: 30_000, message: 'the upload fails again' });
    const task = (await client.getJobTasks(failing.id)).find((t) => t.type === 'upload.flaky')!;
    assert.equal(task.attempt, 3);
    // A running job (the Sharing table), a map job, a graph, a schedule, a join link.
    const running = await client.submitMany(Array.from({ length: 3 }, (_, i) => ({ type: 'hold.on', input: i })), { name: 'held tasks' });
    const map = await client.submitMap((x: number) => x * 2, [1, 2, 3], { name: 'doubles', chunkSize: 1 });
    assert.deepEqual(await map.result(), [2, 4, 6]);
    const graph = await client.submitGraph({ name: 'small sums', output: 'total', nodes: [
      { id: 'numbers', type: 'pipeline.numbers', input: { from: 1, to: 100, batchSize: 10 } },
      { id: 'sums', type: 'pipeline.sums', inputAdapter: 'pull.from_artifacts.rechunk:size', inputArgs: { fromNodes: ['numbers'], size: 20, metaListKey: 'items', pollMs: 50, eofOnTaskDone: true } },
      { id: 'total', type: 'pipeline.total', inputAdapter: 'pull.from_artifacts', inputArgs: { fromNodes: ['sums'], pollMs: 50, eofOnTaskDone: true } },
    ] });
    assert.equal(await graph.result(), 338350, 'the sum of the squares of 1..100');
    await client.createSchedule({ id: 'nightly-report-of-the-uploads', name: 'nightly report of the uploads', cron: '15 3 * * *', timezone: 'America/Argentina/Buenos_Aires', job: { kind: 'tasks', tasks: [{ type: 'hold.on', input: 0 }] } });

    const { page, errors, close } = await logIn(browser, foreman, { phone: true });
    await page.goto(`${foreman.url}/workers`);
    await page.getByTestId('create-join-link').click();
    await page.getByTestId('join-link-url').waitFor();
    // The idle worker's last seen follows its heartbeats, not its connection.
    await waitFor(async () => {
      const seen = await page.locator('[data-worker="phone-test-worker-with-a-long-name"] [data-last-seen]').getAttribute('data-last-seen');
      const w = (await client.workers()).find((x) => x.worker_id === 'phone-test-worker-with-a-long-name')!;
      return seen !== null && Date.parse(seen) >= Date.parse(w.connected_at) + 1_000;
    }, { timeoutMs: 30_000, message: 'the Workers page shows the worker seen after it connected' });

    const pages: [string, string, string][] = [
      ['/', 'overview', `[data-share-job="${running.id}"]`],
      ['/jobs', 'jobs', `[data-job="${failing.id}"]`],
      [`/jobs/${failing.id}`, 'job-failed', '[data-task] [data-attempt]'],
      [`/jobs/${map.id}`, 'job-map', '[data-task]'],
      [`/jobs/${graph.id}`, 'job-graph', '[data-node=total][data-state=completed]'],
      ['/workers', 'workers', '[data-join-link]'],
      ['/workers/phone-test-worker-with-a-long-name', 'worker', '.kv'],
      ['/schedules', 'schedules', '[data-schedule]'],
      ['/schedules/nightly-report-of-the-uploads', 'schedule', '[data-testid=next-runs]'],
    ];
    const problems: string[] = [];
    for (const [path, name, ready] of pages) {
      await page.goto(`${foreman.url}${path}`);
      await page.locator(ready).first().waitFor();
      problems.push(...(await outside(page)).map((p) => `${path}: ${p}`));
      await screenshot(page, `dashboard-${name}-light-phone-fit`);
    }

    // The failed task: its error and Retry on screen, and its detail (input, error, attempts) in its card.
    await page.goto(`${foreman.url}/jobs/${failing.id}`);
    const row = page.locator(`[data-task="${task.taskId}"]`);
    await row.waitFor();
    await reachable(page, `[data-task="${task.taskId}"] td.err`);
    await reachable(page, `[data-task="${task.taskId}"] button:has-text("Retry")`);
    assert.match(await row.locator('td.err').innerText(), /503 Service Unavailable/);
    await row.getByRole('button', { name: 'upload.flaky' }).click();
    await page.locator('tr.detail table.attempts').waitFor();
    problems.push(...(await outside(page)).map((p) => `${failing.id} with its detail open: ${p}`));
    await screenshot(page, 'dashboard-job-failed-detail-light-phone');
    assert.deepEqual(problems, [], 'nothing sticks out of the screen or its card');

    // Attempt 3 of a task with max attempts 1, explained: lost once, failed, once before a Retry.
    assert.match(await page.locator('[data-max-attempts]').innerText(), /^1 per task \(no retry\)/);
    assert.match(await page.locator('[data-max-attempts]').innerText(), /attempt lost with its worker does not/);
    assert.match(await row.locator('[data-attempt]').innerText(), /^3\s*failed 1 of 1 · lost 1 · 1 before a Retry$/);
    assert.deepEqual(await page.locator('tr.detail table.attempts tbody tr td:nth-child(3)').allInnerTexts(), ['failed lost', 'failed', 'failed'], 'attempt 1 was lost, 2 and 3 failed');

    // A map job's tasks are named by their type, as in the CLI and the REST API.
    await page.goto(`${foreman.url}/jobs/${map.id}`);
    await page.locator('[data-task]').first().waitFor();
    assert.deepEqual([...new Set(await page.locator('[data-task] td:nth-child(2)').allInnerTexts())], ['map']);
    // And the jobs list names each job's kind as the REST API does (a graph is no list of tasks).
    await page.goto(`${foreman.url}/jobs`);
    await page.locator(`[data-job="${graph.id}"]`).waitFor();
    assert.deepEqual([await page.locator(`[data-job="${map.id}"] [data-kind]`).textContent(), await page.locator(`[data-job="${graph.id}"] [data-kind]`).textContent(),
      await page.locator(`[data-job="${failing.id}"] [data-kind]`).textContent()], ['map', 'graph', 'tasks']);
    assert.deepEqual(errors, [], 'no errors in the page');
    await close();
    release();
    assert.deepEqual(await running.result(), ['done', 'done', 'done']);
  } finally {
    release();
    await browser.close();
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});
