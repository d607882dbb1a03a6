/**
 * Lending a browser: tabs that open a join link work as map workers beside Node workers, in
 * Chromium driven by playwright-core. A big map job shared by two tabs and a Node worker;
 * jobs that run only in browsers or only on Node; a tab closed mid-task; a function that
 * never returns; the pause button while tasks run; links that are missing, wrong, expired or
 * full; named tasks that never reach a tab. Screenshots of the join page and of the dashboard
 * listing the tabs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';

async function joinLink(foreman: TestForeman, body: Record<string, unknown> = {}): Promise<string> {
  const res = await foreman.fetch('/api/join-links', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 201);
  return (await res.json()).url;
}

interface Tab { context: BrowserContext; page: Page; errors: string[] }

async function openTab(browser: Browser, url: string, options: { dark?: boolean; phone?: boolean } = {}): Promise<Tab> {
  const context = await newContext(browser, options);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { context, page, errors };
}

const status = (tab: Tab) => tab.page.locator('[data-testid=status]').textContent();
const completed = async (tab: Tab) => Number(((await tab.page.locator('[data-testid=completed]').textContent()) ?? '0').replace(/,/g, ''));

/** Wait until a tab says it is connected (or working). */
async function connected(tab: Tab): Promise<void> {
  await waitFor(async () => /Connected|Working/.test((await status(tab)) ?? '') || null, { timeoutMs: 30_000, message: 'the tab joins' });
}

test('browser tabs lend themselves to map jobs beside Node workers: shared work, runOn, a closed tab, a runaway function, pause, and links that do not admit', { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 500 });
  const client = new Client({ url: foreman.url });
  const node = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'node-1', maxConcurrentTasks: 2, allowCode: true, logLevel: 'silent' })
    .handle('server.*', async (t) => t.input);
  const browser = await launchBrowser();
  const tabs: Tab[] = [];
  try {
    await node.start();
    const url = await joinLink(foreman, { name: 'test lab' });
    assert.match(url, /\/join#cct_/);
    for (let i = 0; i < 2; i++) tabs.push(await openTab(browser, url));
    for (const t of tabs) await connected(t);
    await screenshot(tabs[0].page, 'join-light-desktop');

    // 20,000 arguments, shared by two tabs and a Node worker: every result, in order.
    const work = (x: number) => { let s = 0; for (let i = 0; i < 20_000; i++) s += (x * i) % 7; return s + x; };
    const args = Array.from({ length: 20_000 }, (_, i) => i);
    const expected = args.map(work);
    const big = await client.submitMap(work, args);
    assert.deepEqual(await big.result(), expected);
    const tasks = await client.getJobTasks(big.id, { limit: 10_000 });
    const runners = new Set(tasks.map((t) => t.workerId));
    assert.ok(runners.has('node-1'), 'the Node worker took part');
    assert.equal([...runners].filter((w) => w?.startsWith('browser-')).length, 2, `both tabs took part: ${[...runners].join(', ')}`);
    for (const t of tabs) assert.ok((await completed(t)) > 0, 'each tab counts what it did');

    // Where a job runs: only in tabs, or only on Node, whoever else is connected.
    const inTabs = await client.submitMap((x: number) => x + 1, Array.from({ length: 200 }, (_, i) => i), { runOn: 'browser', chunkSize: 10 });
    const onNode = await client.submitMap((x: number) => x - 1, Array.from({ length: 200 }, (_, i) => i), { runOn: 'node', chunkSize: 10 });
    assert.equal((await inTabs.result())[199], 200);
    assert.equal((await onNode.result())[199], 198);
    assert.ok((await client.getJobTasks(inTabs.id)).every((t) => t.workerId?.startsWith('browser-')), 'runOn browser: tabs only');
    assert.ok((await client.getJobTasks(onNode.id)).every((t) => t.workerId === 'node-1'), 'runOn node: never a tab');
    // A named task never reaches a tab: with the Node worker gone, it waits.
    await node.stop();
    const named = await client.submit('tabs.cannot', 1);
    const alsoTabs = await client.submitMap((x: number) => x * 3, [1, 2, 3], { runOn: 'browser' });
    assert.deepEqual(await alsoTabs.result(), [3, 6, 9], 'with only tabs connected, a browser job completes');
    assert.equal((await client.getJob(named.jobId)).status, 'queued', 'the named task was not given to a tab');

    // A tab closed mid-task: its tasks go back to the queue at once and the job completes.
    const slow = (x: number) => { const end = Date.now() + 400; while (Date.now() < end) { /* busy */ } return x * 10; };
    const closing = await client.submitMap(slow, Array.from({ length: 12 }, (_, i) => i), { chunkSize: 1 });
    const goner = tabs[1];
    await waitFor(async () => /Working/.test((await status(goner)) ?? '') || null, { timeoutMs: 30_000, message: 'the second tab is working' });
    const gonerId = ((await goner.page.locator('code').last().textContent()) ?? '').trim();
    await goner.page.close({ runBeforeUnload: true });
    await goner.context.close();
    tabs.splice(1, 1);
    assert.deepEqual(await closing.result(), Array.from({ length: 12 }, (_, i) => i * 10));
    const handedBack = (await client.getJobTasks(closing.id)).filter((t) => t.attempts.some((a) => a.worker_id === gonerId && a.status !== 'completed'));
    assert.ok(handedBack.length > 0, `the closed tab (${gonerId}) gave its running task back`);
    assert.ok(handedBack.every((t) => t.status === 'completed'), 'and another finished it');

    // A function that never returns is stopped at its time limit; the tab keeps working.
    const tab = tabs[0];
    const runaway = await client.submitMap((x: number) => { if (x === 1) { for (;;) { /* forever */ } } return x; }, [0, 1, 2], { chunkSize: 1, timeoutMs: 1_000, runOn: 'browser' });
    const o = await runaway.outcome();
    assert.equal(o.state, 'failed');
    assert.deepEqual(o.results, [0, null, 2]);
    assert.equal(o.failures[0].error?.code, 'CC_ERR_TIMEOUT');
    assert.deepEqual(await client.map((x: number) => x * 2, [5, 6], { runOn: 'browser' }), [10, 12], 'the tab works on after the runaway');

    // The page stays responsive: a click on Pause takes effect while tasks run, and the running tasks go back.
    const long = await client.submitMap(slow, Array.from({ length: 40 }, (_, i) => i), { chunkSize: 1, runOn: 'browser', name: 'render tiles' });
    await waitFor(async () => /Working/.test((await status(tab)) ?? '') || null, { timeoutMs: 30_000, message: 'the tab is working' });
    assert.equal(await tab.page.locator('[data-testid=job]').textContent(), 'render tiles', 'the page names the job');
    await screenshot(tab.page, 'join-working-light-desktop');
    await tab.page.locator('[data-testid=pause]').click({ timeout: 5_000 });
    await waitFor(async () => /Paused/.test((await status(tab)) ?? '') || null, { timeoutMs: 5_000, message: 'paused while tasks ran' });
    const doneWhilePaused = (await client.getJob(long.id)).completedTasks;
    await screenshot(tab.page, 'join-paused-light-desktop');
    await tab.page.locator('[data-testid=resume]').click();
    assert.equal((await long.result()).length, 40);
    assert.ok(doneWhilePaused < 40, 'the job was not finished when paused');

    // The dashboard lists the tab apart from Node workers, with its browser and contribution.
    const dash = await newContext(browser);
    const dp = await dash.newPage();
    await dp.goto(`${foreman.url}/login?next=/workers`);
    await dp.locator('#key').fill(foreman.credentials!.apiKey);
    await dp.locator('button[type=submit]').click();
    await dp.locator('[data-kind="browser"]').first().waitFor();
    assert.match((await dp.locator('[data-kind="browser"]').first().textContent()) ?? '', /Chrome/);
    await dp.locator('[data-testid=create-join-link]').click();
    assert.match((await dp.locator('[data-testid=join-link-url]').textContent()) ?? '', /\/join#cct_/);
    await screenshot(dp, 'dashboard-browsers-light-desktop');
    await dash.close();

    // Links that do not admit: none, a forged one, an expired one, a full one.
    const none = await openTab(browser, `${foreman.url}/join`);
    await none.page.getByText('It needs a join link').waitFor();
    await none.context.close();
    const forged = await openTab(browser, `${url.split('#')[0]}#cct_AAAAAAAAAAAA_notthesecretatall000000000000000000000000`);
    await waitFor(async () => /Not admitted/.test((await status(forged)) ?? '') || null, { timeoutMs: 30_000, message: 'a forged link is refused' });
    assert.match((await forged.page.getByRole('alert').textContent()) ?? '', /not valid/);
    await forged.context.close();
    const full = await openTab(browser, await joinLink(foreman, { max_workers: 1 }));
    await connected(full);
    const second = await openTab(browser, full.page.url());
    await waitFor(async () => /Not admitted/.test((await status(second)) ?? '') || null, { timeoutMs: 30_000, message: 'a full link is refused' });
    assert.match((await second.page.getByRole('alert').textContent()) ?? '', /admits 1 browser at once/);
    await Promise.all([full.context.close(), second.context.close()]);

    for (const t of tabs) assert.deepEqual(t.errors, [], 'no errors in the page');
    for (const [dark, phone] of [[true, false], [false, true], [true, true]] as const) {
      const shot = await openTab(browser, url, { dark, phone });
      await connected(shot);
      if (phone) assert.ok(await shot.page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1), 'fits a phone');
      await screenshot(shot.page, `join-${dark ? 'dark' : 'light'}-${phone ? 'phone' : 'desktop'}`);
      await shot.context.close();
    }
  } finally {
    for (const t of tabs) await t.context.close().catch(() => {});
    await browser.close();
    await client.close();
    await node.stop();
    await foreman.cleanup();
  }
});

test('an expired join link is refused, saying so', { skip: browserSkip }, async () => {
  const foreman = await startTestForeman();
  const browser = await launchBrowser();
  try {
    const url = await joinLink(foreman, { expires_in_ms: 1 });
    const tab = await openTab(browser, url);
    await waitFor(async () => /Not admitted/.test((await status(tab)) ?? '') || null, { timeoutMs: 30_000, message: 'an expired link is refused' });
    assert.match((await tab.page.getByRole('alert').textContent()) ?? '', /expired/);
  } finally {
    await browser.close();
    await foreman.cleanup();
  }
});

test('with authentication off, a tab joins by opening /join and gets a tab\'s limits', { skip: browserSkip }, async () => {
  const foreman = await startTestForeman({ insecure: true });
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    const created = await (await foreman.fetch('/api/join-links', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
    assert.equal(created.url, `${foreman.url}/join`, 'the link is the page itself');
    const tab = await openTab(browser, created.url);
    await connected(tab);
    const [w] = await client.workers();
    assert.equal(w.kind, 'browser');
    assert.ok(w.capacity <= 4, `a tab's capacity is capped: ${w.capacity}`);
    assert.deepEqual(await client.map((x: number) => x + 1, [1, 2, 3], { runOn: 'browser' }), [2, 3, 4]);
    assert.deepEqual(tab.errors, []);
  } finally {
    await browser.close();
    await client.close();
    await foreman.cleanup();
  }
});
