/**
 * The dashboard's Schedules pages in Chromium, as a person uses them: find a schedule in the
 * list from the nav, open it, see its next five runs, pause it and resume it, run it now, watch
 * the run's job complete in the recent runs and follow the link to the job's page; on a phone
 * the pages fit the width. Screenshots, light and dark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, screenshot, logIn } from '../support/browser.ts';

test('the Schedules pages: the list, a schedule\'s next runs, Pause, Resume, Run now, a run\'s link to its job', { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman();
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'reporter', maxConcurrentTasks: 2, logLevel: 'silent' })
    .handle('report.build', async (t) => ({ built: (t.input as { day: string }).day }));
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    await worker.start();
    await client.createSchedule({ id: 'reports', name: 'hourly <b>reports</b>', every: '1h', job: { kind: 'tasks', tasks: [{ type: 'report.build', input: { day: 'today' } }] } });
    await client.createSchedule({ id: 'nightly', cron: '15 3 * * *', timezone: 'Europe/Paris', paused: true, job: { kind: 'tasks', tasks: [{ type: 'report.build', input: { day: 'night' } }] } });

    const { page, errors, close } = await logIn(browser, foreman);
    await page.getByRole('link', { name: 'Schedules' }).click();
    const row = page.locator('[data-schedule="reports"]');
    await row.waitFor();
    // The name is text, never markup.
    assert.match(await row.innerText(), /hourly <b>reports<\/b>/);
    assert.match(await row.innerText(), /every 1 h/);
    assert.match(await row.innerText(), /in \d+/);
    assert.match(await row.innerText(), /active/);
    assert.match(await page.locator('[data-schedule="nightly"]').innerText(), /15 3 \* \* \*[\s\S]*Europe\/Paris[\s\S]*paused/);
    await screenshot(page, 'dashboard-schedules-light-desktop');

    await row.getByRole('link').click();
    await page.waitForURL(`${foreman.url}/schedules/reports`);
    // The address changes before the schedule is fetched: wait for its table, then count.
    const nextRuns = page.locator('[data-testid="next-runs"] tr');
    await nextRuns.first().waitFor();
    assert.equal(await nextRuns.count(), 5);

    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    assert.equal((await client.getSchedule('reports')).paused, true, 'Pause paused it');
    assert.match(await page.locator('.job-head').innerText(), /paused/);
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    assert.equal((await client.getSchedule('reports')).paused, false, 'Resume resumed it');

    await page.getByRole('button', { name: 'Run now' }).click();
    await page.locator('.notice.ok a').waitFor();
    const jobId = await waitFor(async () => {
      const runs = (await client.getSchedule('reports')).recentRuns;
      return runs.find((r) => r.reason === 'trigger')?.jobId ?? null;
    }, { message: 'the trigger is recorded' });
    // The run's job completes on the worker, and the page shows it without a reload.
    const run = page.locator(`[data-run-job="${jobId}"]`);
    await run.waitFor();
    await waitFor(async () => /completed/.test(await run.innerText()) || null, { timeoutMs: 30_000, message: 'the run shows its job completed' });
    await screenshot(page, 'dashboard-schedule-light-desktop');

    await run.getByRole('link').click();
    await page.waitForURL(`${foreman.url}/jobs/${jobId}`);
    await page.locator('.job-head .state.completed').waitFor();
    assert.match(await page.locator('.job-head h2').innerText(), /hourly <b>reports<\/b>/, 'the job is named after the schedule');
    assert.deepEqual(errors, [], 'no errors in the page');
    await close();

    for (const [dark, phone] of [[true, false], [false, true], [true, true]] as const) {
      const tag = `${dark ? 'dark' : 'light'}-${phone ? 'phone' : 'desktop'}`;
      const v = await logIn(browser, foreman, { dark, phone });
      for (const [path, name, ready] of [['/schedules', 'schedules', '[data-schedule]'], ['/schedules/reports', 'schedule', '[data-run-job]']] as const) {
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
    await worker.stop();
    await foreman.cleanup();
  }
});
