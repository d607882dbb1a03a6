/**
 * The dashboard of a key that is not admin, in Chromium: its own jobs in the sharing table and
 * other owners as one summed line; on a worker's page its own running tasks and a count of the
 * others'. Nothing of the other owner (key id, job ids, task ids) is anywhere in the page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const cli = async (args: string[]) => (await run(process.execPath, [bin, ...args], { env: process.env, timeout: 60_000 })).stdout.trim();

test("a key's dashboard shows its own jobs and tasks, and other owners' only as counts", { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 200 });
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => { release = resolve; });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'shared', maxConcurrentTasks: 4, logLevel: 'silent' })
    .handle('own.hold', async () => { await held; return 'done'; });
  const db = ['--database', foreman.databaseUrl];
  const [mine, theirs] = await Promise.all([
    cli(['key', 'create', '--scopes', 'read,submit', '--name', 'mine', ...db]),
    cli(['key', 'create', '--scopes', 'submit', '--name', 'theirs', ...db]),
  ]);
  const a = new Client({ url: foreman.url, apiKey: mine });
  const b = new Client({ url: foreman.url, apiKey: theirs });
  const admin = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    await worker.start();
    const own = await a.submitMany([{ type: 'own.hold', input: 1 }, { type: 'own.hold', input: 2 }], { name: 'my renders' });
    const other = await b.submitMany([{ type: 'own.hold', input: 3 }, { type: 'own.hold', input: 4 }], { name: 'their renders' });
    const otherTasks = (await admin.getJobTasks(other.id)).map((t) => t.taskId);
    const ownTasks = (await admin.getJobTasks(own.id)).map((t) => t.taskId);
    await waitFor(async () => (await admin.workers()).find((w) => w.worker_id === 'shared')?.running_tasks === 4 || null, { timeoutMs: 30_000, message: 'both jobs run' });
    const secrets = [theirs.split('_')[1], other.id, ...otherTasks];

    const context = await newContext(browser);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${foreman.url}/`);
    await page.locator('#key').fill(mine);
    await page.locator('button[type=submit]').click();
    await page.locator(`[data-share-job="${own.id}"]`).waitFor();
    await page.locator('[data-share-others]', { hasText: '1 other owner (1 job) 2 running, 0 waiting' }).waitFor();
    assert.match(await page.locator(`[data-share-job="${own.id}"]`).innerText(), /50%/, 'its job runs half of all running tasks');
    const overview = await page.content();
    assert.deepEqual(secrets.filter((s) => overview.includes(s)), [], 'the overview names nothing of the other owner');
    await screenshot(page, 'dashboard-overview-own-key');

    await page.goto(`${foreman.url}/workers/shared`);
    await page.locator('[data-running-others]', { hasText: 'and 2 tasks of other owners\' jobs' }).waitFor();
    for (const id of ownTasks) await page.locator('td', { hasText: id }).waitFor();
    const workerPage = await page.content();
    assert.deepEqual(secrets.filter((s) => workerPage.includes(s)), [], 'the worker page names nothing of the other owner');
    await screenshot(page, 'dashboard-worker-own-key');
    assert.deepEqual(errors, [], 'no errors in the page');
    await context.close();
    release();
    await Promise.all([own.result(), other.result()]);
  } finally {
    release();
    await browser.close();
    await Promise.all([a.close(), b.close(), admin.close()]);
    await worker.stop();
    await foreman.cleanup();
  }
});
