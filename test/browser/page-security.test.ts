/**
 * The pages' defences in Chromium: after logging in, the login page goes only to a path of
 * the foreman's own site, whatever `next` says; every page (dashboard, login, join, API docs,
 * the worker's status page) loads and works under its Content-Security-Policy with no
 * violation, while the policy stops an injected inline script and framing by another site.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext } from '../support/browser.ts';

/** A site of the attacker's: requests to it are answered here, never sent out. */
const EVIL = 'evil.example';

/** Answer every request to the attacker's site with a page of the attacker's, here. */
async function serveEvil(context: BrowserContext): Promise<void> {
  await context.route((url) => url.hostname === EVIL, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>evil</title><p>evil</p>' }));
}

/**
 * Every Content-Security-Policy violation a page reports, and every error it logs. The
 * listener is installed before any of the page's own scripts run.
 */
async function watch(context: BrowserContext): Promise<(page: Page) => string[]> {
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  const seen = new Map<Page, string[]>();
  context.on('page', (page) => {
    const list: string[] = [];
    seen.set(page, list);
    page.on('pageerror', (e) => list.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') list.push(m.text()); });
  });
  return (page) => seen.get(page) ?? [];
}

/**
 * Check that the page's policy is in force: an inline script added to it does not run, and
 * the browser reports the refusal (which is then taken off the page's list of errors).
 */
async function refusesInlineScript(page: Page, errors: string[]): Promise<void> {
  const ran = await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true';
    document.head.append(s);
    return (window as unknown as { __injected?: boolean }).__injected === true;
  });
  assert.equal(ran, false, `${page.url()}: an injected inline script is refused`);
  await waitFor(() => errors.some((e) => /CSP violation: script-src/.test(e)) || null, { timeoutMs: 10_000, message: 'the refusal is reported' });
  errors.length = 0;
}

test('after logging in, the login page goes to `next` only when it is a path of this site', { skip: browserSkip, timeout: 120_000 }, async () => {
  const foreman = await startTestForeman();
  const origin = new URL(foreman.url).origin;
  const browser = await launchBrowser();
  try {
    const context = await newContext(browser);
    await serveEvil(context);
    const page = await context.newPage();
    const logInWith = async (next: string) => {
      await page.goto(`${foreman.url}/login?next=${encodeURIComponent(next)}`);
      await page.locator('#key').fill(foreman.credentials!.apiKey);
      await page.locator('button[type=submit]').click();
      await page.waitForURL((u) => u.origin !== origin || u.pathname !== '/login', { timeout: 30_000 });
      return new URL(page.url());
    };
    for (const next of [`/\\${EVIL}/x`, `/\t/${EVIL}/x`, `/\n/${EVIL}/x`, `\\/${EVIL}/x`, `//${EVIL}/x`, `https://${EVIL}/x`, `http:${EVIL}/x`, 'javascript:alert(1)', 'workers']) {
      const landed = await logInWith(next);
      assert.equal(landed.origin, origin, `next=${JSON.stringify(next)} must not leave the foreman (went to ${landed.href})`);
      assert.equal(landed.pathname, '/', `next=${JSON.stringify(next)}: the dashboard instead`);
      await page.locator('[data-card]').first().waitFor();
    }
    // A path of this site, with its query, is where the person was going.
    const landed = await logInWith('/jobs?status=failed');
    assert.equal(landed.href, `${origin}/jobs?status=failed`);
    await waitFor(async () => (await page.locator('select[aria-label=state]').inputValue()) === 'failed' || null, { timeoutMs: 30_000, message: 'the job list filtered as asked' });
    await context.close();
  } finally {
    await browser.close();
    await foreman.cleanup();
  }
});

test('every page works under its Content-Security-Policy with no violation; the policy stops inline script and framing', { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 500 });
  const worker = new Worker({
    foremanUrl: foreman.wsUrl, token: foreman.credentials!.workerToken, workerId: 'csp-worker', maxConcurrentTasks: 2,
    logLevel: 'silent', statusPort: 0, statusHost: '127.0.0.1',
  }).handle('csp.echo', async (t) => t.input);
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    await worker.start();
    const job = await client.submitMany(Array.from({ length: 5 }, (_, i) => ({ type: 'csp.echo', input: i })), { name: 'echoes' });
    await job.result();
    await client.createSchedule({ id: 'csp-echoes', every: '1h', job: { kind: 'tasks', tasks: [{ type: 'csp.echo', input: 'tick' }] } });
    const context = await newContext(browser);
    const errorsOf = await watch(context);
    const page = await context.newPage();

    // The login page, then each of the dashboard's pages, with its charts.
    await page.goto(`${foreman.url}/`);
    await page.locator('#key').fill(foreman.credentials!.apiKey);
    await page.locator('button[type=submit]').click();
    await page.locator('[data-card]').first().waitFor();
    await page.locator('.uplot').first().waitFor();
    assert.deepEqual(errorsOf(page), [], 'the login page and the dashboard load with no violation');
    await refusesInlineScript(page, errorsOf(page));
    for (const [path, ready] of [['/jobs', `[data-job="${job.id}"]`], [`/jobs/${job.id}`, '.job-head'], ['/workers', '[data-worker="csp-worker"]'], ['/workers/csp-worker', 'h2'],
      ['/schedules', '[data-schedule="csp-echoes"]'], ['/schedules/csp-echoes', '[data-testid="next-runs"] tr'], ['/failed', '[data-testid="failed-groups"] td']] as const) {
      await page.goto(`${foreman.url}${path}`);
      await page.locator(ready).first().waitFor();
    }
    // The API's documentation, with its own scripts and styles.
    await page.goto(`${foreman.url}/docs`);
    await page.locator('.swagger-ui .opblock').first().waitFor({ timeout: 30_000 });
    assert.deepEqual(errorsOf(page), [], 'the dashboard\'s pages and the API docs load with no violation');

    // The join page runs a shipped function in a Web Worker made from a data: URL.
    const link = await (await foreman.fetch('/api/join-links', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
    const tab = await context.newPage();
    await tab.goto(link.url);
    await waitFor(async () => /Connected|Working/.test((await tab.locator('[data-testid=status]').textContent()) ?? '') || null, { timeoutMs: 30_000, message: 'the tab joins' });
    assert.deepEqual(await client.map((x: number) => x * 7, [1, 2, 3], { runOn: 'browser' }), [7, 14, 21]);
    assert.deepEqual(errorsOf(tab), [], 'the join page runs shipped functions with no violation');
    await refusesInlineScript(tab, errorsOf(tab));

    // The worker's status page, with its chart.
    const status = await context.newPage();
    await status.goto(`http://127.0.0.1:${worker.statusPort}/`);
    await status.locator('.worker-id', { hasText: 'csp-worker' }).waitFor();
    await status.locator('.uplot').first().waitFor();
    assert.deepEqual(errorsOf(status), [], 'the worker page loads with no violation');
    await refusesInlineScript(status, errorsOf(status));

    // Another site may not frame the login page (clickjacking) nor the worker's page. The site
    // is served from this machine: Chromium keeps public sites from framing local addresses anyway.
    const site = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><title>another site</title><iframe src="${foreman.url}/login"></iframe><iframe src="http://127.0.0.1:${worker.statusPort}/"></iframe>`);
    });
    site.listen(0, '127.0.0.1');
    await once(site, 'listening');
    try {
      const other = await context.newPage();
      const refused: string[] = [];
      other.on('console', (m) => { if (/frame-ancestors/.test(m.text())) refused.push(m.text()); });
      await other.goto(`http://localhost:${(site.address() as AddressInfo).port}/`);
      await waitFor(() => refused.length >= 2 || null, { timeoutMs: 30_000, message: 'both frames are refused' });
      for (const frame of other.frames().slice(1)) assert.equal(await frame.locator('#key, #app').count(), 0, `framed: ${frame.url()}`);
    } finally {
      site.close();
    }
    await context.close();
  } finally {
    await browser.close();
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});
