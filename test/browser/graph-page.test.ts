/**
 * The dashboard's job page for a task graph: each node's state as it moves (waiting, running,
 * completed), its attempt, worker and artifacts; a screenshot of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/index.ts';
import { Worker, type BatchHandler } from '../../src/worker/index.ts';
import { startTestForeman } from '../../src/testing/index.ts';
import pipeline from '../../examples/pipeline/handlers.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';

const GRAPH = JSON.parse(readFileSync(fileURLToPath(new URL('../../examples/pipeline/graph.json', import.meta.url)), 'utf8'));

test('the job page of a task graph shows each node\'s state, worker and artifacts as it runs', { skip: browserSkip, timeout: 120_000 }, async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'pipeline-worker', maxConcurrentTasks: 3, logLevel: 'silent' });
  for (const [pattern, h] of Object.entries(pipeline)) worker.handle(pattern, h as BatchHandler);
  const browser = await launchBrowser();
  try {
    // Slowed down so the page sees it under way.
    GRAPH.nodes[0].input.delayMs = 25;
    const graph = await client.submitGraph(GRAPH);
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    await page.goto(`${foreman.url}/login?next=/jobs/${graph.jobId}`);
    await page.locator('#key').fill(foreman.credentials!.apiKey);
    await page.locator('button[type=submit]').click();
    await page.locator('[data-testid=graph-nodes]').waitFor();
    assert.equal(await page.locator('[data-node=total]').getAttribute('data-state'), 'waiting', 'total waits for sums');
    await worker.start();
    assert.equal(await graph.result(), 333338333350000);
    await page.locator('[data-node=total][data-state=completed]').waitFor({ timeout: 30_000 });
    const row = await page.locator('[data-node=numbers]').textContent();
    assert.match(row ?? '', /pipeline-worker/);
    assert.match(row ?? '', /100/);
    assert.match((await page.locator('[data-node=sums]').textContent()) ?? '', /pull\.from_artifacts\.rechunk:size/);
    await screenshot(page, 'dashboard-graph-light-desktop');
    await ctx.close();
  } finally {
    await browser.close();
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});
