/**
 * The worker's page in Chromium: it names the worker, follows its work live without a reload,
 * shows a running task's progress, fits a phone's width, and looks right in light and dark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { Worker, NonRetryableError } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';

/** The number on the page's card labelled `label`. */
async function card(page: Page, label: string): Promise<string> {
  return (await page.locator('.card', { has: page.locator(`span:text-is("${label}")`) }).locator('b').textContent()) ?? '';
}

test('the worker page shows the worker, follows its tasks live, and fits light, dark, desktop and phone', { skip: browserSkip }, async () => {
  const foreman = await startTestForeman();
  const worker = new Worker({
    foremanUrl: foreman.wsUrl, token: foreman.credentials!.workerToken, workerId: 'page-worker-1', maxConcurrentTasks: 3,
    logLevel: 'silent', statusPort: 0, statusHost: '127.0.0.1',
  });
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => { release = resolve; });
  worker.handle('demo.add', async (t) => (t.input as number) + 1);
  worker.handle('demo.fail', async () => { throw new NonRetryableError('demo failure'); });
  worker.handle('demo.resize', async (_t, ctx) => {
    ctx.progress(40, 'resizing 4 of 10');
    await released;
    return 'done';
  });
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  const errors: string[] = [];
  try {
    await worker.start();
    const url = `http://127.0.0.1:${worker.statusPort}/`;
    // Some history, so that the cards and the chart have something to show.
    await (await client.submitMany([
      ...Array.from({ length: 12 }, (_, i) => ({ type: 'demo.add', input: i })),
      { type: 'demo.fail', input: null },
    ])).outcome();

    const context = await newContext(browser);
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(url);
    await page.locator('.worker-id', { hasText: 'page-worker-1' }).waitFor();
    assert.equal(await page.title(), 'CrowdCompute worker page-worker-1');
    await waitFor(async () => assert.equal(await card(page, 'completed'), '12'), { timeoutMs: 30_000, message: 'the completed count' });
    assert.equal(await card(page, 'failed'), '1');

    // A task finishes while the page is open: the count follows without a reload.
    await page.evaluate(() => { (window as unknown as { stayed: boolean }).stayed = true; });
    assert.equal(await (await client.submit('demo.add', 41)).result(), 42);
    await waitFor(async () => assert.equal(await card(page, 'completed'), '13'), { timeoutMs: 30_000, message: 'the completed count after one more task' });
    assert.equal(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed), true, 'the page was not reloaded');

    // A running task, with the progress its handler reported.
    const slow = await client.submit('demo.resize', { width: 640 });
    const row = page.locator('tbody tr', { hasText: 'demo.resize' });
    await waitFor(async () => assert.match((await row.textContent()) ?? '', /40%/), { timeoutMs: 30_000, message: 'the running task and its progress' });
    assert.match((await row.textContent()) ?? '', /resizing 4 of 10/);
    assert.match((await page.locator('.panel', { hasText: 'Recent changes' }).textContent()) ?? '', /connected/);
    await context.close();

    for (const [dark, phone] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const ctx = await newContext(browser, { dark, phone });
      const p = await ctx.newPage();
      p.on('pageerror', (e) => errors.push(e.message));
      await p.goto(url);
      await p.locator('tbody tr', { hasText: 'demo.resize' }).waitFor();
      await p.locator('.chart-box canvas').first().waitFor();
      const [scrollWidth, innerWidth] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scrollWidth <= innerWidth, `nothing wider than the ${phone ? 'phone' : 'desktop'} screen (${scrollWidth} > ${innerWidth})`);
      const background = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background === 'rgb(17, 20, 25)', dark, `the ${dark ? 'dark' : 'light'} theme follows the browser (${background})`);
      await screenshot(p, `worker-${dark ? 'dark' : 'light'}-${phone ? 'phone' : 'desktop'}`);
      await ctx.close();
    }
    release();
    assert.equal(await slow.result(), 'done');
    assert.deepEqual(errors, []);
  } finally {
    release();
    await browser.close();
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});
