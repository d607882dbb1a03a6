/**
 * What every command that talks to a foreman shares: the `--foreman` flags (URL, key, CA,
 * connect timeout), a client opened on them and closed afterwards, and JSON on stdout.
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { Client as ClientType } from '../client/index.ts';
import { UNITS } from '../protocol/index.ts';
import { DEFAULT_FOREMAN_URL, localForeman } from './local-foreman.ts';
import { parseDuration, within } from './parse-args.ts';

/** The client SDK module, as `withClient` hands it to a command (loaded when the command runs). */
export type Sdk = typeof import('../client/index.ts');

/**
 * Run a command with a client on `--foreman`, closed afterwards whatever happens. The SDK is
 * loaded only when a command runs, which keeps `--help` fast.
 */
export async function withClient(o: { foreman?: string; apiKey?: string; ca?: string; connectTimeout: number }, fn: (client: ClientType, sdk: Sdk) => Promise<void>): Promise<void> {
  const url = clientForemanUrl(o.foreman);
  checkForemanUrls(url);
  const sdk = await import('../client/index.ts');
  const client = new sdk.Client({ url, connectTimeoutMs: o.connectTimeout, ...(o.apiKey ? { apiKey: o.apiKey } : {}), ...(o.ca ? { ca: readFileSync(o.ca) } : {}) });
  try {
    await fn(client, sdk);
  } finally {
    await client.close();
  }
}

/**
 * A foreman URL needs its scheme: `localhost:8000` would otherwise be read as a URL of scheme
 * `localhost:`. The error shows the URL as it should be written.
 */
export function checkForemanUrls(value: string): void {
  const urls = value.split(',').map((u) => u.trim()).filter(Boolean);
  if (urls.length === 0) throw new Error('--foreman is empty: give the foreman\'s URL, e.g. http://localhost:8000');
  if (urls.every((u) => /^(https?|wss?):\/\//i.test(u))) return;
  const fixed = urls.map((u) => (/^(https?|wss?):\/\//i.test(u) ? u : `http://${u.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')}`)).join(',');
  const wrong = urls.find((u) => !/^(https?|wss?):\/\//i.test(u))!;
  throw new Error(`the foreman URL ${wrong} needs http:// or https:// in front: --foreman ${fixed}`);
}

/**
 * The foreman a client command talks to: `--foreman` (or `CROWDCOMPUTE_URL`) when given; else the
 * local foreman as the local credentials file records it, the one at http://localhost:8000 or
 * the only one recorded, so that a foreman started here on another port (`start.sh --port 8123`)
 * is found as `worker` and the store commands find it; else http://localhost:8000, whose
 * connection error then says that nothing answers there.
 */
export function clientForemanUrl(given: string | undefined): string {
  if (given !== undefined) return given;
  try {
    return localForeman(undefined, '', { needsUrl: true }).url ?? DEFAULT_FOREMAN_URL;
  } catch {
    return DEFAULT_FOREMAN_URL;
  }
}

/**
 * The WebSocket URL(s) a worker connects to, from its `--foreman`: checked as a client's are
 * ({@link checkForemanUrls}), so that the URL the client commands take works here too. An
 * http(s):// URL without a path can only mean the foreman itself, whose workers' endpoint is
 * /ws; one with a path may be a proxy's route to it, so only its scheme changes.
 */
export function foremanWsUrls(value: string): string {
  checkForemanUrls(value);
  return value.split(',').map((u) => u.trim()).filter(Boolean).map((url) => {
    if (!/^https?:/i.test(url)) return url;
    let u: URL;
    try { u = new URL(url); } catch { throw new Error(`the foreman URL ${url} is not a URL: --foreman http://<host>:<port>`); }
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    if (u.pathname === '/' && !u.search && !u.hash) u.pathname = '/ws';
    return u.href;
  }).join(',');
}

/** The flags that say which foreman to talk to and how. */
export const foremanOption = (cmd: Command) => cmd
  .addOption(new Option('--foreman <url>', `foreman HTTP URL(s), comma-separated (default: the local foreman, from the local credentials file: the one at ${DEFAULT_FOREMAN_URL}, or the only one recorded; else ${DEFAULT_FOREMAN_URL})`).env('CROWDCOMPUTE_URL')
    .argParser((v: string) => { checkForemanUrls(v); return v; }))
  .option('--api-key <key>', 'API key, cck_… (env CROWDCOMPUTE_API_KEY; default: a local foreman\'s, from the local credentials file)')
  .option('--ca <file>', 'trust this CA certificate (PEM) for an https:// foreman with a private certificate')
  .addOption(new Option('--connect-timeout <duration>', 'how long to keep trying a foreman that cannot be reached, or whose database is away (503)')
    .argParser(within(parseDuration, '--connect-timeout', { min: 0, max: UNITS.DAY, unit: 'ms' })).default(10_000, '10s'));

/** A value as indented JSON on stdout. */
export const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

