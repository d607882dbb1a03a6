/**
 * The dashboard's Failed page in Chromium, as a person uses it: tasks that failed for good
 * are listed by type and error from the nav, with links to example jobs; once the cause is
 * fixed, "Retry all" on a group asks first, then requeues the group's tasks, whose job
 * completes, and the group leaves the page without a reload. On a phone (390 px) the page
 * fits the width and each group's error wraps, its Retry button in view. Screenshots, light
 * and dark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { NonRetryableError, Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, screenshot, logIn } from '../support/browser.ts';

/** A long path in one word, as real errors have them: it must wrap inside its cell on a phone. */
const LONG_PATH = '/var/lib/images/incoming/2026/12/06/batch-000017/originals/IMG_20261206_101500_HDR_panorama.tiff';

test('the Failed page: groups by type and error, Retry all asks then requeues, the job completes; it fits a phone', { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman();
  let broken = true;
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'imager', maxConcurrentTasks: 4, logLevel: 'silent' })
    .handle('img.resize', async (t) => {
      if (broken) throw new NonRetryableError(`cannot decode ${LONG_PATH}\n    at decode (codec.ts:12)`);
      return { resized: t.input };
    })
    .handle('img.crop', async () => { throw new NonRetryableError('crop box <b>outside</b> the image'); });
  const client = new Client({ url: foreman.url, apiKey: foreman.credentials!.apiKey });
  const browser = await launchBrowser();
  try {
    await worker.start();
    const job = await client.submitMany([
      { type: 'img.resize', input: 1 }, { type: 'img.resize', input: 2 }, { type: 'img.crop', input: 3 }, { type: 'img.resize', input: 4 },
    ]);
    assert.equal((await job.outcome()).state, 'failed');

    const { page, errors, close } = await logIn(browser, foreman);
    await page.getByRole('link', { name: 'Failed' }).click();
    await page.waitForURL(`${foreman.url}/failed`);
    const resize = page.locator('[data-group="img.resize NonRetryableError"]');
    const crop = page.locator('[data-group="img.crop NonRetryableError"]');
    await resize.waitFor();
    assert.match(await resize.innerText(), /img\.resize[\s\S]*NonRetryableError[\s\S]*cannot decode \/var\/lib[\s\S]*3\s+1/);
    assert.doesNotMatch(await resize.innerText(), /codec\.ts/, 'the first line of the message only');
    assert.match(await crop.innerText(), /crop box <b>outside<\/b> the image/, 'the message is text, never markup');
    assert.match(await page.getByTestId('failed-total').innerText(), /4 tasks in 2 groups/);
    await screenshot(page, 'dashboard-failed-light-desktop');

    // The example job's link leads to the job.
    await resize.getByRole('link').first().click();
    await page.waitForURL(`${foreman.url}/jobs/${job.id}`);
    await page.goBack();
    await resize.waitFor();

    broken = false;
    await resize.getByRole('button', { name: 'Retry all' }).click();
    assert.match(await resize.innerText(), /Run 3 tasks again\?/);
    await resize.getByRole('button', { name: 'Cancel' }).click();
    await resize.getByRole('button', { name: 'Retry all' }).waitFor();
    assert.equal((await client.getJob(job.id)).status, 'failed', 'Cancel retried nothing');
    await resize.getByRole('button', { name: 'Retry all' }).click();
    await resize.getByRole('button', { name: 'Retry 3' }).click();
    await page.locator('.notice.ok').waitFor();
    assert.match(await page.locator('.notice.ok').innerText(), /Requeued 3 tasks in 1 job/);
    await waitFor(async () => (await client.getJobResults(job.id)).results.filter((r) => r !== null).length === 3 || null,
      { timeoutMs: 30_000, message: 'the retried tasks complete' });
    assert.deepEqual((await client.getJobResults(job.id)).results, [{ resized: 1 }, { resized: 2 }, null, { resized: 4 }]);
    await resize.waitFor({ state: 'detached' });
    await crop.waitFor();
    assert.match(await page.getByTestId('failed-total').innerText(), /1 task in 1 group/);
    assert.deepEqual(errors, [], 'no errors in the page');
    await close();

    for (const [dark, phone] of [[true, false], [false, true], [true, true]] as const) {
      const tag = `${dark ? 'dark' : 'light'}-${phone ? 'phone' : 'desktop'}`;
      const v = await logIn(browser, foreman, { dark, phone });
      await v.page.goto(`${foreman.url}/failed`);
      const row = v.page.locator('[data-group="img.crop NonRetryableError"]');
      await row.waitFor();
      if (phone) {
        const overflow = await v.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 1, `/failed fits a phone's width (overflows by ${overflow} px)`);
        const wrap = await v.page.locator('.table-wrap').evaluate((el) => el.scrollWidth - el.clientWidth);
        assert.ok(wrap <= 1, `the groups' table fits its card (overflows by ${wrap} px)`);
        const button = await row.getByRole('button', { name: 'Retry all' }).boundingBox();
        assert.ok(button && button.x >= 0 && button.x + button.width <= 390, `the Retry button is in view (${JSON.stringify(button)})`);
      }
      await screenshot(v.page, `dashboard-failed-${tag}`);
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
