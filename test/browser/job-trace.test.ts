/**
 * The dashboard's job page shows a traced job's OpenTelemetry trace id, as text to copy into a
 * tracing backend: selected whole by a click, and copied by its button. A job that was not
 * traced shows no trace. The foreman here makes no spans of its own: a REST submission's
 * `traceparent` header is what the job keeps, so its trace id is known in advance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestForeman } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, logIn, screenshot } from '../support/browser.ts';

test("the job page shows a traced job's trace id, to copy", { skip: browserSkip, timeout: 120_000 }, async () => {
  const foreman = await startTestForeman();
  const browser = await launchBrowser();
  try {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const submit = async (headers: Record<string, string>) => {
      const res = await foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ kind: 'tasks', name: 'traced', tasks: [{ type: 'page.trace' }] }) });
      assert.equal(res.status, 201);
      return (await res.json() as { id: string }).id;
    };
    const traced = await submit({ traceparent: `00-${traceId}-b7ad6b7169203331-01` });
    const plain = await submit({});

    const { page, errors, close } = await logIn(browser, foreman);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: foreman.url });
    await page.goto(`${foreman.url}/jobs/${traced}`);
    const shown = page.locator('[data-trace-id]');
    await shown.waitFor();
    assert.equal(await shown.textContent(), traceId);
    assert.equal(await page.locator('dt', { hasText: 'trace' }).count(), 1);

    // One click selects the whole id (nothing more, nothing less), for copying by hand.
    await shown.click();
    assert.equal(await page.evaluate(() => window.getSelection()?.toString()), traceId);
    // The button puts it on the clipboard.
    await page.locator('[data-copy-trace]').click();
    await page.locator('[data-copy-trace]', { hasText: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), traceId);
    await screenshot(page, 'dashboard-job-trace-light-desktop');

    // A job nobody traced has no trace row.
    await page.goto(`${foreman.url}/jobs/${plain}`);
    await page.locator('dd.mono', { hasText: plain }).waitFor();
    assert.equal(await page.locator('[data-trace-id]').count(), 0);
    assert.equal(await page.locator('dt', { hasText: 'trace' }).count(), 0);
    assert.deepEqual(errors, []);
    await close();
  } finally {
    await browser.close();
    await foreman.cleanup();
  }
});
