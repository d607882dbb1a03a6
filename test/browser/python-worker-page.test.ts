/**
 * The Python worker's page (`python -m crowdcompute worker`, its status server serving copies of
 * ui/) in Chromium: the same page as the Node worker's renders the Python worker's snapshot,
 * follows its tasks live, shows a running task's progress, and breaks none of the page's
 * security policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';
import { PYTHON, PYTHON_PACKAGE_DIR as PYTHON_DIR, pythonSkip } from '../support/python.ts';

const skip = browserSkip || pythonSkip;

const HANDLERS = `
import os, time

HANDLERS = {"demo.add": lambda task: task.get_input("n") + 1}

def register(worker):
    def resize(task):
        worker.send_task_progress(40, "resizing 4 of 10")
        while not os.path.exists(task.get_input("flag")):
            time.sleep(0.02)
        return "done"
    worker.register_handler("demo.resize", resize)
`;

async function card(page: Page, label: string): Promise<string> {
  return (await page.locator('.card', { has: page.locator(`span:text-is("${label}")`) }).locator('b').textContent()) ?? '';
}

test('the Python worker serves the worker page, which follows its tasks live', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-pypage-'));
  writeFileSync(join(dir, 'page_handlers.py'), HANDLERS);
  const flag = join(dir, 'release');
  const foreman = await startTestForeman();
  const proc = spawn(PYTHON, ['-m', 'crowdcompute', 'worker', '--foreman', foreman.wsUrl, '--id', 'py-page-worker',
    '--handlers', 'page_handlers', '--status-port', '0', '--concurrency', '3', '--log-level', 'warn'], {
    cwd: dir, env: { ...process.env, PYTHONPATH: PYTHON_DIR, CROWDCOMPUTE_WORKER_TOKEN: foreman.credentials!.workerToken },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  const errors: string[] = [];
  try {
    const url = await waitFor(() => /status (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1] ?? null, { timeoutMs: 30_000, message: `the worker's start line (${stderr})` });
    await (await client.submitMany(Array.from({ length: 7 }, (_, i) => ({ type: 'demo.add', input: { n: i } })))).outcome();

    const context = await newContext(browser);
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${url}/`);
    await page.locator('.worker-id', { hasText: 'py-page-worker' }).waitFor();
    assert.equal(await page.title(), 'CrowdCompute worker py-page-worker');
    await waitFor(async () => assert.equal(await card(page, 'completed'), '7'), { timeoutMs: 30_000, message: 'the completed count' });

    // A task finishes while the page is open: the count follows without a reload.
    assert.equal(await (await client.submit('demo.add', { n: 41 })).result(), 42);
    await waitFor(async () => assert.equal(await card(page, 'completed'), '8'), { timeoutMs: 30_000, message: 'the completed count after one more task' });

    const slow = await client.submit('demo.resize', { flag });
    const row = page.locator('tbody tr', { hasText: 'demo.resize' });
    await waitFor(async () => assert.match((await row.textContent()) ?? '', /40%/), { timeoutMs: 30_000, message: 'the running task and its progress' });
    assert.match((await row.textContent()) ?? '', /resizing 4 of 10/);
    assert.match((await page.locator('.panel', { hasText: 'Recent changes' }).textContent()) ?? '', /connected/);
    await page.locator('.chart-box canvas').first().waitFor();
    await screenshot(page, 'python-worker-light-desktop');
    await context.close();

    writeFileSync(flag, 'go');
    assert.equal(await slow.result(), 'done');
    assert.deepEqual(errors, []);
  } finally {
    writeFileSync(flag, 'go');
    proc.kill('SIGTERM');
    await new Promise((resolve) => { if (proc.exitCode !== null) resolve(null); else proc.once('exit', resolve); });
    await browser.close();
    await client.close();
    await foreman.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
