/**
 * The login page in Chromium tells a person where the admin key is: the local credentials file
 * (CROWDCOMPUTE_CONFIG_DIR) and a command that prints the key; that command, run as shown,
 * prints a key that logs in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startForeman } from '../../src/foreman/index.ts';
import { browserSkip, launchBrowser, newContext, screenshot } from '../support/browser.ts';

const run = promisify(execFile);

test('the login page says where the admin key is and how to print it, and the command it shows prints a key that logs in', { skip: browserSkip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-login-'));
  // A foreman on a database file leaves its admin key in the local credentials file (this test's own directory).
  const configDir = join(dir, 'config');
  const before = process.env.CROWDCOMPUTE_CONFIG_DIR;
  process.env.CROWDCOMPUTE_CONFIG_DIR = configDir;
  const foreman = await startForeman({ port: 0, host: '127.0.0.1', database: `sqlite:${join(dir, 'cc.db')}`, logLevel: 'silent' });
  const browser = await launchBrowser();
  try {
    const context = await newContext(browser, { phone: true });
    const page = await context.newPage();
    await page.goto(`${foreman.url}/`);
    await page.locator('#key').waitFor();
    const where = (await page.locator('#where-key').textContent()) ?? '';
    assert.match(where, /admin key/);
    assert.match(where, /credentials\.json/);
    assert.match(where, /CROWDCOMPUTE_CONFIG_DIR/);
    assert.match(where, /~\/\.config\/crowdcompute/);
    const command = (await page.locator('#print-key').textContent()) ?? '';
    assert.match(command, /credentials\.json/);
    // On a phone the command wraps inside the page: nothing wider than the screen.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the login page fits a 390 px screen');
    await screenshot(page, 'login-phone');

    // The command, pasted into a shell on the foreman's machine, prints the admin key.
    const { stdout } = await run('bash', ['-c', command], { env: { ...process.env, CROWDCOMPUTE_CONFIG_DIR: configDir }, timeout: 30_000 });
    assert.equal(stdout.trim(), foreman.credentials!.apiKey);
    await page.locator('#key').fill(stdout.trim());
    await page.locator('button[type=submit]').click();
    await page.locator('[data-card]').first().waitFor({ timeout: 60_000 });
    await context.close();
  } finally {
    await browser.close();
    await foreman.stop();
    if (before === undefined) delete process.env.CROWDCOMPUTE_CONFIG_DIR; else process.env.CROWDCOMPUTE_CONFIG_DIR = before;
    rmSync(dir, { recursive: true, force: true });
  }
});
