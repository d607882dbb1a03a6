/**
 * The foreman's dashboard in Chromium, driven as a person would: log in with a key, watch a
 * running job's progress advance and both workers appear, open a failed task's error, retry
 * the failed job until it completes, cancel a running one, filter the list by state, follow a
 * worker's page; screenshots of every page, light and dark, desktop and phone width.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, screenshot, logIn } from '../support/browser.ts';

/** The percent a job's progress bar shows. */
async function percent(page: Page, jobId: string): Promise<number> {
  const text = await page.locator(`[data-job="${jobId}"] .progress .small`).first().textContent();
  return Number(/(\d+)%/.exec(text ?? '')?.[1] ?? -1);
}

test('the dashboard: live progress and workers, a failed task\'s error, Retry, Cancel, the state filter, a worker\'s page', { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 200 });
  let fixed = false;
  let stepGate: () => void = () => {};
  let steps = new Promise<void>((r) => { stepGate = r; });
  // Each call lets every waiting "slow" task take one more step.
  const step = () => { const open = stepGate; steps = new Promise<void>((r) => { stepGate = r; }); open(); };
  const alpha = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'alpha', maxConcurrentTasks: 4, logLevel: 'silent' })
    .handle('frames.render', async (t, ctx) => {
      for (let i = 1; i <= 4; i++) { await steps; ctx.progress(i * 25); }
      return t.input;
    })
    .handle('upload.flaky', async (t) => { if (!fixed) throw new Error(`storage refused upload ${String(t.input)}`); return 'stored'; })
    .handle('sleep.forever', async (_t, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));
  const beta = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'beta', maxConcurrentTasks: 2, allowCode: true, logLevel: 'silent' })
    .handle('thumb.*', async (t) => `thumb of ${String(t.input)}`);
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    await Promise.all([alpha.start(), beta.start()]);
    await (await client.submitMany(Array.from({ length: 20 }, (_, i) => ({ type: 'thumb.small', input: i })), { name: 'thumbnails' })).result();
    const failing = await client.submitMany([{ type: 'upload.flaky', input: 'a.png' }, { type: 'thumb.small', input: 'b.png' }], { name: 'uploads' });
    await failing.outcome();
    const running = await client.submitMany(Array.from({ length: 4 }, (_, i) => ({ type: 'frames.render', input: i })), { name: 'render frames' });

    const { page, errors, close } = await logIn(browser, foreman);
    // Both workers, and the running job's progress advancing as its handlers report, without a reload.
    await page.locator('[data-worker="alpha"]').waitFor();
    await page.locator('[data-worker="beta"]').waitFor();
    await page.evaluate(() => { (window as unknown as { stayed: boolean }).stayed = true; });
    await page.locator(`[data-job="${running.id}"]`).waitFor();
    // The running job in the sharing table: its running tasks against its fair share.
    await page.locator(`[data-share-job="${running.id}"]`).waitFor();
    assert.match(await page.locator(`[data-share-job="${running.id}"]`).innerText(), /100%/);
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = await percent(page, running.id);
      step();
      await waitFor(async () => (await percent(page, running.id)) > before || null, { timeoutMs: 20_000, message: `progress past ${before}%` });
      seen.push(await percent(page, running.id));
    }
    assert.ok(seen[0] < seen[2], `progress advanced: ${seen.join(' → ')}%`);
    assert.equal(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed), true, 'without a reload');
    await screenshot(page, 'dashboard-overview-light-desktop');
    step();
    assert.deepEqual(await running.result(), [0, 1, 2, 3]);

    // A failed task's error on its job page; Retry turns the job into a completed one.
    await page.goto(`${foreman.url}/jobs/${failing.id}`);
    await page.locator('.job-head .state', { hasText: 'failed' }).waitFor();
    const row = page.locator('[data-task]', { hasText: 'upload.flaky' });
    await row.locator('button.link').click();
    await page.locator('tr.detail pre.err', { hasText: 'storage refused upload a.png' }).waitFor();
    await page.locator('table.attempts', { hasText: 'alpha' }).waitFor();
    await screenshot(page, 'dashboard-job-failed-light-desktop');
    fixed = true;
    await page.locator('button', { hasText: 'Retry failed' }).click();
    await page.locator('.job-head .state', { hasText: 'completed' }).waitFor({ timeout: 30_000 });
    assert.equal((await client.getJob(failing.id)).status, 'completed');
    assert.deepEqual((await client.getJobOutcome(failing.id)).results, ['stored', 'thumb of b.png'], 'the retried task\'s result joins the one already recorded');

    // Cancel a running job.
    const endless = await client.submitMany([{ type: 'sleep.forever' }, { type: 'sleep.forever' }], { name: 'endless' });
    await page.goto(`${foreman.url}/jobs/${endless.id}`);
    await page.locator('.job-head .state', { hasText: 'running' }).waitFor({ timeout: 30_000 });
    await page.locator('button', { hasText: 'Cancel job' }).click();
    await page.locator('.job-head .state', { hasText: 'cancelled' }).waitFor({ timeout: 30_000 });
    assert.equal((await endless.outcome()).state, 'cancelled');

    // The filter by state.
    await page.goto(`${foreman.url}/jobs`);
    await page.locator(`[data-job="${endless.id}"]`).waitFor();
    await page.locator('select[aria-label="state"]').selectOption('cancelled');
    await waitFor(async () => (await page.locator('[data-job]').count()) === 1 || null, { message: 'only the cancelled job is listed' });
    assert.equal(await page.locator(`[data-job="${endless.id}"]`).count(), 1);
    assert.match(page.url(), /status=cancelled/);
    await page.locator('select[aria-label="state"]').selectOption('');
    await waitFor(async () => (await page.locator('[data-job]').count()) === 4 || null, { message: 'every job again' });
    await screenshot(page, 'dashboard-jobs-light-desktop');

    // An open job says so on its page until it is sealed.
    const open = await client.openTasks({ name: 'streaming' });
    await page.goto(`${foreman.url}/jobs/${open.id}`);
    await page.locator('.job-head span[title^="It takes more tasks"]', { hasText: 'open' }).waitFor({ timeout: 30_000 });
    await open.seal();

    // A worker's page: its capacity, what it did, its connections; the count follows live.
    await page.goto(`${foreman.url}/workers/beta`);
    await page.locator('h2', { hasText: 'beta' }).waitFor();
    const done = async () => Number((await page.locator('.card', { hasText: 'completed' }).locator('b').textContent())?.replace(/,/g, ''));
    const before = await done();
    await (await client.submitMany(Array.from({ length: 5 }, (_, i) => ({ type: 'thumb.big', input: i })))).result();
    await waitFor(async () => (await done()) >= before + 5 || null, { timeoutMs: 20_000, message: 'the worker page follows its completed count' });
    await page.locator('td', { hasText: 'connected' }).first().waitFor();
    await screenshot(page, 'dashboard-worker-light-desktop');
    assert.deepEqual(errors, [], 'no errors in the page');
    await close();

    // Every page, dark and light, desktop and phone.
    for (const [dark, phone] of [[true, false], [false, true], [true, true]] as const) {
      const tag = `${dark ? 'dark' : 'light'}-${phone ? 'phone' : 'desktop'}`;
      const v = await logIn(browser, foreman, { dark, phone });
      await v.page.locator('[data-worker="alpha"]').waitFor();
      await screenshot(v.page, `dashboard-overview-${tag}`);
      for (const [path, name, ready] of [['/jobs', 'jobs', '[data-job]'], [`/jobs/${failing.id}`, 'job', '[data-task]'], ['/workers/alpha', 'worker', '.cards']] as const) {
        await v.page.goto(`${foreman.url}${path}`);
        await v.page.locator(ready).first().waitFor();
        if (phone) {
          const overflow = await v.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(overflow <= 1, `${path} fits a phone's width (overflows by ${overflow} px)`);
        }
        await screenshot(v.page, `dashboard-${name}-${tag}`);
      }
      assert.deepEqual(v.errors, [], `no errors in the page (${tag})`);
      await v.close();
    }
  } finally {
    await browser.close();
    await client.close();
    await Promise.all([alpha.stop(), beta.stop()]);
    await foreman.cleanup();
  }
});
