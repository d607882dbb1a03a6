/**
 * A Python worker on the dashboard: listed among the workers with its runtime, its tasks on
 * the job's page and on its own page exactly as a Node worker's are.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';
import { pythonSkip, spawnPython } from '../support/python.ts';

const WORKER = `
import asyncio, os
from crowdcompute import Worker

async def square(task):
    return task.input_data * task.input_data

Worker(os.environ["FOREMAN"], "py-dash", None, allow_code=True).register_handler("py.*", square).run()
`;

test('the dashboard lists a Python worker with its runtime, and its tasks as a Node worker\'s', { skip: browserSkip || pythonSkip, timeout: 120_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 200 });
  const py = spawnPython(WORKER, { FOREMAN: foreman.wsUrl, CROWDCOMPUTE_WORKER_TOKEN: foreman.credentials!.workerToken! });
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    await waitFor(async () => (await client.workers()).some((w) => w.worker_id === 'py-dash' && w.status !== 'offline'), { message: `the Python worker connects: ${py.output()}` });
    const job = await client.submitMany(Array.from({ length: 6 }, (_, i) => ({ type: 'py.square', input: i })), { name: 'python squares' });
    assert.deepEqual(await job.result(), [0, 1, 4, 9, 16, 25]);
    const [worker] = (await client.workers()).filter((w) => w.worker_id === 'py-dash');
    assert.equal(worker.kind, 'python');
    assert.match(String(worker.resources.runtime), /^python 3\.\d+/);

    const context = await newContext(browser);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${foreman.url}/`);
    await page.locator('#key').fill(foreman.credentials!.apiKey!);
    await page.locator('button[type=submit]').click();
    await page.locator('[data-card]').first().waitFor();

    await page.goto(`${foreman.url}/workers`);
    const row = page.locator('tr[data-worker="py-dash"]');
    await row.waitFor();
    assert.match(await row.locator('[data-runtime]').textContent() ?? '', /^python 3\.\d+/);
    // Columns: worker, status, running, handles, runtime, completed.
    await waitFor(async () => (await row.locator('td').nth(5).textContent())?.trim() === '6', { message: 'the row counts its 6 completed tasks' });
    await screenshot(page, 'python-worker-list');

    // It runs shipped Python natively: marked so wherever its code is listed.
    assert.equal(await row.locator('[data-unsandboxed]').textContent(), 'unsandboxed');
    await page.goto(`${foreman.url}/workers/py-dash`);
    await page.getByText(/python 3\.\d+/).first().waitFor();
    await page.locator('[data-unsandboxed]').first().waitFor();
    await page.goto(`${foreman.url}/jobs/${job.id}`);
    // A finished task's attempts name the worker that ran it.
    await page.locator('tr[data-task] button.link').first().click();
    await page.locator('table.attempts').getByText('py-dash').waitFor();
    await screenshot(page, 'python-worker-job');

    // A Python map job's page says its language and shows its function's source.
    const map = await client.submitMap({ python: 'def cube(x):\n    return x ** 3\n', name: 'cube' }, [1, 2, 3]);
    assert.deepEqual(await map.result(), [1, 8, 27]);
    await page.goto(`${foreman.url}/jobs/${map.id}`);
    await page.getByText('map: cube (Python)').first().waitFor();
    await page.locator('details[data-code] summary').click();
    assert.match(await page.locator('details[data-code] pre').textContent() ?? '', /def cube\(x\):\s+return x \*\* 3/);
    await screenshot(page, 'python-map-job');
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await browser.close();
    py.child.kill('SIGTERM');
    await new Promise((r) => { if (py.child.exitCode !== null || py.child.signalCode !== null) r(null); else py.child.once('exit', r); });
    await client.close();
    await foreman.cleanup();
  }
});
