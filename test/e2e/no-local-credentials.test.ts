/**
 * A foreman started with --no-local-credentials (CROWDCOMPUTE_NO_LOCAL_CREDENTIALS=1, or
 * `localCredentials: false` in the SDK) leaves nothing in the local credentials file and prints
 * nothing secret, and serves clients and workers that bring their own key and token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from '../../src/client/index.ts';
import { startForeman } from '../../src/foreman/index.ts';
import { credentialsFile } from '../../src/host/local-credentials.ts';
import { freePort, localApiKeyAt, spawnForemanProcess, spawnWorkerProcess, startTestForeman, waitFor } from '../../src/testing/index.ts';
import { oneLineFailure, runBin } from '../support/cli-process.ts';

/** Nothing in the config directory: not the file, not its lock, not the directory's contents. */
function assertUntouched(configDir: string): void {
  assert.deepEqual(existsSync(configDir) ? readdirSync(configDir) : [], [], `${configDir} stays empty`);
}

for (const form of ['flag', 'environment'] as const) {
  test(`crowdcompute foreman with the ${form === 'flag' ? '--no-local-credentials flag' : 'CROWDCOMPUTE_NO_LOCAL_CREDENTIALS=1 variable'}: nothing written or printed; a worker and a client with their own credentials work`, { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cc-no-local-'));
    const configDir = join(dir, 'config');
    const database = `sqlite:${join(dir, 'crowdcompute.db')}`;
    const secret = randomBytes(32).toString('base64');
    const env = { CROWDCOMPUTE_CONFIG_DIR: configDir, CROWDCOMPUTE_SECRET: secret, ...(form === 'environment' ? { CROWDCOMPUTE_NO_LOCAL_CREDENTIALS: '1' } : {}) };
    const foreman = await spawnForemanProcess(await freePort(), ['--database', database, ...(form === 'flag' ? ['--no-local-credentials'] : [])], env);
    let worker: ReturnType<typeof spawnWorkerProcess> | null = null;
    let client: Client | null = null;
    try {
      assertUntouched(configDir);
      // The CLI on this machine, told the database and the secret, as in a pod.
      const cliEnv = { ...process.env, ...env };
      const key = (await runBin(['key', 'create', '--scopes', 'admin', '--database', database], { env: cliEnv })).stdout.match(/cck_\S+/)?.[0];
      const token = (await runBin(['token', 'create', '--worker', 'own-token', '--database', database], { env: cliEnv })).stdout.match(/cct_\S+/)?.[0];
      assert.ok(key && token, 'the CLI made a key and a token');
      worker = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'own-token', '--allow-code'], { ...env, CROWDCOMPUTE_WORKER_TOKEN: token });
      client = new Client({ url: foreman.url, apiKey: key });
      assert.deepEqual(await client.map((x: number) => x + 1, [1, 2, 3]), [2, 3, 4]);
      const c = client;
      await waitFor(async () => (await c.workers()).some((w) => w.worker_id === 'own-token' && w.status === 'online'));
      assertUntouched(configDir);
      // What it printed names no credential and not the secret.
      const printed = foreman.output();
      assert.doesNotMatch(printed, /cck_|cct_/);
      assert.ok(!printed.includes(secret), 'the secret is not printed');
      assert.match(printed, /dashboard: http:\/\/127\.0\.0\.1:\d+\/ \(log in with an admin API key/);
      // Nor did the foreman issue a key or token for a machine that would never find them.
      const keys = JSON.parse((await runBin(['key', 'list', '--json', '--database', database], { env: cliEnv })).stdout) as { name: string | null }[];
      const tokens = JSON.parse((await runBin(['token', 'list', '--json', '--database', database], { env: cliEnv })).stdout) as { name: string | null }[];
      assert.deepEqual([...keys, ...tokens].filter((k) => /^local /.test(k.name ?? '')), []);
    } finally {
      await client?.close();
      worker?.kill();
      await worker?.exited;
      foreman.kill();
      await foreman.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('crowdcompute foreman --no-local-credentials without the deployment\'s secret, or with a variable that is not yes or no, refuses to start in one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-no-local-'));
  const configDir = join(dir, 'config');
  const { CROWDCOMPUTE_SECRET: _s, ...rest } = process.env;
  try {
    const args = ['foreman', '--port', '0', '--database', `sqlite:${join(dir, 'crowdcompute.db')}`, '--no-local-credentials'];
    oneLineFailure(await runBin(args, { env: { ...rest, CROWDCOMPUTE_CONFIG_DIR: configDir } }), args, /--no-local-credentials .*needs the deployment's secret.*--secret-file or CROWDCOMPUTE_SECRET/);
    const envArgs = args.slice(0, -1);
    oneLineFailure(await runBin(envArgs, { env: { ...rest, CROWDCOMPUTE_CONFIG_DIR: configDir, CROWDCOMPUTE_NO_LOCAL_CREDENTIALS: 'yes' } }), envArgs,
      /CROWDCOMPUTE_NO_LOCAL_CREDENTIALS must be 1 or true \(or 0, false, unset\); it is "yes"/);
    assertUntouched(configDir);
    assert.ok(!existsSync(join(dir, 'crowdcompute.db')), 'no store was made');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the SDK\'s localCredentials: false: no credentials kept, none left in the file; a secret is required for a lasting store', async () => {
  const secret = randomBytes(32).toString('base64');
  const foreman = await startTestForeman({ localCredentials: false, secret });
  try {
    assert.equal(foreman.credentials, null);
    assert.equal(localApiKeyAt(foreman.url), undefined, 'no entry for its URL, in this process or the file');
    const file = existsSync(credentialsFile()) ? readFileSync(credentialsFile(), 'utf8') : '';
    assert.ok(!file.includes(foreman.databaseUrl.slice('sqlite:'.length)), 'no entry for its database in the file');
    // It still authenticates: a request without a key is refused.
    assert.equal((await fetch(`${foreman.url}/api/jobs`)).status, 401);
  } finally {
    await foreman.cleanup();
  }
  const dir = mkdtempSync(join(tmpdir(), 'cc-no-local-'));
  try {
    await assert.rejects(startForeman({ port: 0, host: '127.0.0.1', logLevel: 'silent', database: `sqlite:${join(dir, 'x.db')}`, localCredentials: false }),
      /localCredentials: false\) needs the deployment's secret/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
