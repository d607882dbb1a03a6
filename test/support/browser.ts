/**
 * Browser tests drive Debian's Chromium (`apt-get install -y chromium`; scripts/test.sh
 * installs it when missing) through playwright-core: never a downloaded browser. Without
 * Chromium the browser tests skip, except under CI=true, where they fail.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CROWDCOMPUTE_CHROMIUM ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present && process.env.CI === 'true') throw new Error(`Chromium is required under CI=true, and ${CHROMIUM} is missing (apt-get install -y chromium)`);

/** `skip` for node:test: false when Chromium is there. */
export const browserSkip: string | false = present ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;

/** Where screenshots go (a folder CI can keep as artifacts; ignored by git). */
export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

/** A headless Chromium with the flags a machine without outside network needs. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A browser context as a person would have it: light or dark, desktop or phone width. */
export function newContext(browser: Browser, options: { dark?: boolean; phone?: boolean } = {}): Promise<BrowserContext> {
  return browser.newContext({
    colorScheme: options.dark ? 'dark' : 'light',
    viewport: options.phone ? { width: 390, height: 844 } : { width: 1280, height: 860 },
    deviceScaleFactor: 1,
    ...(options.phone ? { isMobile: true, hasTouch: true } : {}),
  });
}

/** Save a full-page screenshot as `<name>.png` under ARTIFACTS; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * A new browser context logged in to a foreman's dashboard with its local admin key, as a person
 * would through the login form; `errors` collects the page's uncaught errors and console errors.
 */
export async function logIn(browser: Browser, foreman: { url: string; credentials: { apiKey: string } | null },
  options: { dark?: boolean; phone?: boolean } = {}): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const context = await newContext(browser, options);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${foreman.url}/`);
  await page.locator('#key').fill(foreman.credentials!.apiKey);
  await page.locator('button[type=submit]').click();
  await page.locator('[data-card]').first().waitFor();
  return { page, errors, close: () => context.close() };
}
