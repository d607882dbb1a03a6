/**
 * The dashboard's job page shows the job's webhook: before the job ends, where its end will go;
 * after, the delivery and each attempt with the receiver's answer (here two refusals, then 204).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '../../src/client/index.ts';
import { startTestForeman } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';

test("the job page shows the webhook's delivery and its attempts", { skip: browserSkip, timeout: 120_000 }, async () => {
  let calls = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => { calls++; res.writeHead(calls <= 2 ? 500 : 204).end(calls <= 2 ? 'busy' : ''); });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const foreman = await startTestForeman({ webhookBackoffMs: 50 });
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    // No worker serves it: it waits until it is cancelled, which ends it.
    const job = await client.submit('page.hook', {}, { webhook: url });
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    await page.goto(`${foreman.url}/login?next=/jobs/${job.jobId}`);
    await page.locator('#key').fill(foreman.credentials!.apiKey);
    await page.locator('button[type=submit]').click();
    const section = page.locator('[data-testid=webhook]');
    // The section shows the URL at once and its deliveries once they are fetched.
    await section.getByText(/will be posted here when the job finishes/).waitFor({ timeout: 30_000 });
    assert.match((await section.textContent()) ?? '', new RegExp(url.replace(/[.]/g, '\\.')));

    await client.cancel(job.jobId);
    await section.locator('[data-state=delivered]').waitFor({ timeout: 30_000 });
    const rows = section.locator('[data-testid=webhook-attempts] tbody tr');
    assert.equal(await rows.count(), 3);
    assert.match((await rows.nth(0).textContent()) ?? '', /HTTP 500.*HTTP 500/);
    assert.match((await rows.nth(2).textContent()) ?? '', /HTTP 204/);
    assert.match((await section.textContent()) ?? '', /the job was cancelled · 3 attempts/);
    await screenshot(page, 'dashboard-job-webhook-light-desktop');
    await ctx.close();
  } finally {
    await browser.close();
    await client.close();
    await foreman.cleanup();
    receiver.close();
  }
});
