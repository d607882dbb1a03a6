/**
 * The commands that open the store themselves (key, token, join-link, prune) and `worker`, run
 * as a user runs them: from another folder than the foreman's, with only the local credentials
 * file (CROWDCOMPUTE_CONFIG_DIR) to find the foreman by. They act on the running foreman's
 * database, never make a store unless asked (--create), take --database or
 * CROWDCOMPUTE_DATABASE to choose another, and print tables for people, JSON for scripts.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bin, oneLineFailure, runBin, type Ran } from '../support/cli-process.ts';
import pg from 'pg';
import { Client } from '../../src/client/index.ts';
import { freePort, spawnForemanProcess, waitFor, type ChildForeman } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const handlersModule = fileURLToPath(new URL('../../examples/handlers.ts', import.meta.url));
const pgUrl = await testPostgresUrl();

let root: string;
/** The foreman's folder: its SQLite file lives here. */
let foremanDir: string;
/** Where the commands run: another folder, as a user in another terminal would be. */
let elsewhere: string;
/** The local credentials file's folder. */
let configDir: string;
let foreman: ChildForeman;

/** The environment of every command: the test's config folder, and nothing that names a database or foreman. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, CROWDCOMPUTE_CONFIG_DIR: configDir, ...extra };
  for (const k of ['CROWDCOMPUTE_DATABASE', 'CROWDCOMPUTE_URL', 'CROWDCOMPUTE_FOREMAN', 'CROWDCOMPUTE_SECRET', 'CROWDCOMPUTE_WORKER_TOKEN', 'CROWDCOMPUTE_API_KEY']) {
    if (!(k in extra)) delete e[k];
  }
  return e;
}

/** Run the CLI in `elsewhere` (or `cwd`); a failure is returned with its exit code, not thrown. */
async function cli(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Ran> {
  return runBin(args, { env: env(options.env), cwd: options.cwd ?? elsewhere });
}

/** The command succeeds; its result. */
async function ok(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Ran> {
  const r = await cli(args, options);
  assert.equal(r.code, 0, `crowdcompute ${args.join(' ')} exits 0; stderr: ${r.stderr}`);
  return r;
}

/** The command fails with exit code 1 and one line, `crowdcompute: <message>`, that matches. */
async function failsWith(args: string[], message: RegExp, options: { env?: Record<string, string>; cwd?: string } = {}): Promise<string> {
  return oneLineFailure(await cli(args, options), args, message);
}

/** What the foreman answers a key: the HTTP status of GET /api/stats with it. */
async function statusWith(key: string): Promise<number> {
  const res = await fetch(`${foreman.url}/api/stats`, { headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

/** The local admin key the foreman left in the credentials file. */
function localAdminKey(): string {
  const content = JSON.parse(readFileSync(join(configDir, 'credentials.json'), 'utf8')) as { foremen: { apiKey?: string }[] };
  return content.foremen.find((f) => f.apiKey)!.apiKey!;
}

const noStrayStore = (dir: string) => assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.db')), [], `no store was made in ${dir}`);

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cc-cli-store-'));
  foremanDir = join(root, 'foreman');
  elsewhere = join(root, 'elsewhere');
  configDir = join(root, 'config');
  for (const d of [foremanDir, elsewhere]) mkdirSync(d);
  foreman = await spawnForemanProcess(await freePort(), ['--database', `sqlite:${join(foremanDir, 'crowdcompute.db')}`], { CROWDCOMPUTE_CONFIG_DIR: configDir });
});

after(async () => {
  foreman?.kill();
  await foreman?.exited;
  rmSync(root, { recursive: true, force: true });
});

test('key create from another folder makes a key the running foreman accepts, says which database, and leaves no store in that folder', async () => {
  const r = await ok(['key', 'create', '--scopes', 'read', '--name', 'from elsewhere']);
  const key = r.stdout.trim();
  assert.match(key, /^cck_/);
  assert.match(r.stderr, new RegExp(`created in sqlite:${join(foremanDir, 'crowdcompute.db').replaceAll('.', '\\.')} \\(the foreman at ${foreman.url.replaceAll('.', '\\.')}\\)`));
  assert.equal(await statusWith(key), 200, 'the running foreman accepts the key');
  noStrayStore(elsewhere);
  // Tokens and join links land there too, and prune acts on it.
  assert.match((await ok(['token', 'create', '--worker', 'w-1'])).stdout, /^cct_/);
  assert.match((await ok(['prune', '--json'])).stdout, /"pruned_jobs":0/);
  noStrayStore(elsewhere);
});

test('client commands without --foreman talk to the local foreman the credentials file records, on whatever port it runs, with its key', async () => {
  const stats = JSON.parse((await ok(['stats', '--json'])).stdout) as { workers: unknown };
  assert.ok(stats.workers, 'stats came from the running foreman');
  const submitted = await ok(['submit', 'nobody.here', '{}', '--no-wait', '--queue-timeout', '1s']);
  const jobId = submitted.stdout.match(/\(job (\S+)\)/)![1];
  assert.match((await ok(['jobs'])).stdout, new RegExp(jobId));
  // An address given wins: nothing answers at this one.
  const port = await freePort();
  await failsWith(['jobs', '--foreman', `http://127.0.0.1:${port}`], new RegExp(`cannot reach the foreman at http://127\\.0\\.0\\.1:${port}`));
});

test('a store that does not exist is an error naming its path and the fix, and is not made; --create makes it', async () => {
  const missing = join(elsewhere, 'missing.db');
  const fix = 'start the foreman first, or pass --create to make a new store';
  for (const args of [['key', 'list'], ['key', 'create', '--scopes', 'read'], ['token', 'create', '--worker', '*'], ['join-link', 'list'], ['prune']]) {
    const line = await failsWith([...args, '--database', missing], new RegExp(`the SQLite file ${missing.replaceAll('.', '\\.')} does not exist`));
    assert.ok(line.endsWith(fix), line);
    assert.ok(!existsSync(missing), `crowdcompute ${args.join(' ')} made no file`);
  }
  // With no foreman recorded on this machine and no --database, nothing is guessed.
  const empty = mkdtempSync(join(root, 'empty-config-'));
  await failsWith(['key', 'list'], /no foreman has run on this machine \(none is recorded in .*credentials\.json\): start the foreman first \(crowdcompute foreman\), or pass --database <path\|postgres-url>$/,
    { env: { CROWDCOMPUTE_CONFIG_DIR: empty } });
  noStrayStore(elsewhere);

  const created = await ok(['key', 'create', '--scopes', 'read', '--name', 'in a new store', '--database', missing, '--create']);
  assert.match(created.stdout, /^cck_/);
  assert.ok(existsSync(missing), '--create made the store');
  const listed = JSON.parse((await ok(['key', 'list', '--database', missing, '--json'])).stdout) as { name: string }[];
  assert.deepEqual(listed.map((k) => k.name), ['in a new store']);
  assert.equal(await statusWith(created.stdout.trim()), 401, 'a key of another store is not the running foreman\'s');
});

test('--database and CROWDCOMPUTE_DATABASE choose the store; without them, the local foreman\'s', async () => {
  const other = join(elsewhere, 'other.db');
  await ok(['key', 'create', '--scopes', 'read', '--name', 'other store', '--database', `sqlite:${other}`, '--create']);
  const names = async (options: { env?: Record<string, string>; args?: string[] }) =>
    (JSON.parse((await ok(['key', 'list', '--json', ...(options.args ?? [])], options)).stdout) as { name: string }[]).map((k) => k.name);
  assert.deepEqual(await names({ args: ['--database', other] }), ['other store']);
  assert.deepEqual(await names({ env: { CROWDCOMPUTE_DATABASE: `sqlite:${other}` } }), ['other store']);
  // The flag wins over the environment.
  assert.deepEqual(await names({ env: { CROWDCOMPUTE_DATABASE: join(foremanDir, 'crowdcompute.db') }, args: ['--database', other] }), ['other store']);
  const local = await names({});
  assert.ok(local.some((n) => n.startsWith('local admin on ')), `the local foreman's keys: ${local.join(', ')}`);
  assert.ok(!local.includes('other store'));
  // --foreman picks the local foreman by its address; one not recorded here is an error.
  assert.deepEqual(await names({ args: ['--foreman', foreman.url] }), local);
  await failsWith(['key', 'list', '--foreman', 'http://127.0.0.1:9'], /no foreman at http:\/\/127\.0\.0\.1:9 is recorded in .*credentials\.json .*: pass --database <path\|postgres-url>$/);
});

test('PostgreSQL: a schema without a store is an error and stays empty; --create sets it up', { skip: pgUrl ? false : 'no PostgreSQL reachable' }, async () => {
  const schema = `cc_cli_store_${process.pid}`;
  const url = `${pgUrl}?schema=${schema}`;
  const db = new pg.Client({ connectionString: pgUrl! });
  await db.connect();
  try {
    await failsWith(['key', 'list', '--database', url], new RegExp(`the PostgreSQL database has no CrowdCompute store in schema ${schema} \\(.*\\): start the foreman first, or pass --create to make a new store$`));
    const present = await db.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema]);
    assert.equal(present.rowCount, 0, 'no schema was made');
    await ok(['key', 'create', '--scopes', 'read', '--name', 'pg', '--database', url, '--create']);
    assert.match((await ok(['key', 'list', '--database', url])).stdout, /\bpg\b/);
  } finally {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
  }
});

test('worker without --foreman connects to the local foreman with its token, and runs a task', async () => {
  const child = spawn(process.execPath, [bin, 'worker', '--handlers', handlersModule, '--id', 'local-default', '--no-status', '--log-level', 'warn'],
    { cwd: elsewhere, env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const client = new Client({ url: foreman.url, apiKey: localAdminKey() });
  try {
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`the worker exited: ${err}`);
      return / connected to /.test(err) || null;
    }, { timeoutMs: 30_000, message: 'the worker connects' });
    assert.match(err, new RegExp(`worker local-default connected to ${foreman.wsUrl.replaceAll('.', '\\.')}`));
    const job = await client.submit('math.add', { a: 40, b: 2 });
    assert.deepEqual(await job.result(), { result: 42 });
  } finally {
    await client.close();
    child.kill();
    await exited;
  }
  // With nothing recorded on this machine: one line, and what to do.
  const empty = mkdtempSync(join(root, 'empty-config-'));
  await failsWith(['worker', '--handlers', handlersModule, '--no-status'],
    /no foreman has run on this machine .*: start the foreman first \(crowdcompute foreman\), or pass --foreman ws:\/\/<host>:8000\/ws \(env CROWDCOMPUTE_FOREMAN\) with --token or --token-file$/,
    { env: { CROWDCOMPUTE_CONFIG_DIR: empty } });
});

test('crowdcompute foreman & crowdcompute worker: a worker started just before the foreman\'s first start waits for it to record itself', async () => {
  const config = mkdtempSync(join(root, 'first-start-'));
  const dir = mkdtempSync(join(root, 'first-start-db-'));
  const child = spawn(process.execPath, [bin, 'worker', '--handlers', handlersModule, '--id', 'early', '--no-status', '--log-level', 'warn'],
    { cwd: elsewhere, env: env({ CROWDCOMPUTE_CONFIG_DIR: config }), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let second: ChildForeman | null = null;
  try {
    second = await spawnForemanProcess(await freePort(), ['--database', `sqlite:${join(dir, 'crowdcompute.db')}`], { CROWDCOMPUTE_CONFIG_DIR: config });
    const started = second;
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`the worker exited: ${err}`);
      return / connected to /.test(err) || null;
    }, { timeoutMs: 30_000, message: 'the worker connects' });
    assert.match(err, new RegExp(`worker early connected to ${started.wsUrl.replaceAll('.', '\\.')}`));
  } finally {
    child.kill();
    await exited;
    second?.kill();
    await second?.exited;
  }
});

test('join-link create takes --foreman for the address browsers reach, and still --url; the links are the running foreman\'s', async () => {
  const viaForeman = await ok(['join-link', 'create', '--foreman', 'http://192.168.1.20:8000', '--name', 'via foreman', '--expires', '2h']);
  assert.match(viaForeman.stdout, /^http:\/\/192\.168\.1\.20:8000\/join#cct_\S+\n$/);
  const viaUrl = await ok(['join-link', 'create', '--url', 'https://compute.example.org', '--name', 'via url']);
  assert.match(viaUrl.stdout, /^https:\/\/compute\.example\.org\/join#cct_\S+\n$/);
  const local = await ok(['join-link', 'create', '--name', 'local']);
  assert.match(local.stdout, new RegExp(`^${foreman.url.replaceAll('.', '\\.')}/join#cct_`));
  const res = await fetch(`${foreman.url}/api/join-links`, { headers: { authorization: `Bearer ${localAdminKey()}` } });
  const links = await res.json() as { name: string; expires_at: string }[];
  assert.deepEqual(links.map((l) => l.name).sort(), ['local', 'via foreman', 'via url']);
  const hours = (name: string) => (Date.parse(links.find((l) => l.name === name)!.expires_at) - Date.now()) / 3_600_000;
  assert.ok(hours('via foreman') > 1.9 && hours('via foreman') <= 2, '--expires 2h');
  assert.ok(hours('via url') > 23.9 && hours('via url') <= 24, 'a day by default');
  const help = (await ok(['join-link', 'create', '--help'])).stdout;
  assert.match(help, /--foreman <url>/);
  assert.doesNotMatch(help, /--url/, '--url is kept for old scripts but not shown');
  assert.match(help, /\(default: 24h\)/);
  assert.doesNotMatch(help, /86400000/);
});

test('no duration flag shows its default in milliseconds in --help', async () => {
  for (const cmd of [['worker'], ['join-link', 'create'], ['graph', 'run'], ['foreman'], ['demo'], ['submit'], ['map'], ['retry'], ['job'], ['schedule', 'create'], ['prune']]) {
    // One block per option: its first line starts with the flag, the next lines are indented further.
    const options = (await ok([...cmd, '--help'])).stdout.split(/\n(?= {2}-)/).map((o) => o.replace(/\s+/g, ' '));
    const raw = options.filter((o) => /<duration>/.test(o) && /\(default: \d+\)/.test(o));
    assert.deepEqual(raw, [], `crowdcompute ${cmd.join(' ')} --help`);
  }
});

test('key, token and join-link lists: a table for people, --json in snake_case for scripts; revoking twice says it was already revoked', async () => {
  const made = await ok(['key', 'create', '--scopes', 'read,submit', '--name', 'listed', '--max-concurrency', '3']);
  const id = made.stdout.trim().split('_')[1];
  const table = (await ok(['key', 'list'])).stdout;
  const [head, ...rows] = table.trimEnd().split('\n');
  assert.match(head, /^ID\s+NAME\s+SCOPES\s+MAX RUNNING\s+CREATED\s+LAST USED\s+STATE$/);
  assert.match(rows.find((l) => l.startsWith(id))!, new RegExp(`^${id}\\s+listed\\s+read,submit\\s+3\\s+(just now|\\d+ \\w+ ago)\\s+never\\s+active$`));
  const json = JSON.parse((await ok(['key', 'list', '--json'])).stdout) as Record<string, unknown>[];
  const mine = json.find((k) => k.id === id)!;
  assert.deepEqual(Object.keys(mine).sort(), ['created_at', 'id', 'kind', 'last_used_at', 'last_used_from', 'max_concurrency', 'name', 'revoked_at', 'scopes', 'webhook_url'].sort());
  assert.deepEqual([mine.kind, mine.scopes, mine.max_concurrency, mine.revoked_at], ['key', ['read', 'submit'], 3, null]);
  assert.match((await ok(['token', 'list'])).stdout, /^ID\s+NAME\s+WORKER\s+CREATED\s+LAST USED\s+STATE\n/);
  assert.ok(Array.isArray(JSON.parse((await ok(['token', 'list', '--json'])).stdout)));
  assert.match((await ok(['join-link', 'list'])).stdout, /^ID\s+NAME\s+MAX TABS\s+EXPIRES\s+CREATED\s+LAST USED\s+STATE\n/);

  assert.match((await ok(['key', 'revoke', id])).stdout, new RegExp(`^API key ${id} revoked: `));
  const again = await ok(['key', 'revoke', id]);
  assert.match(again.stdout, new RegExp(`^API key ${id} was already revoked on \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} UTC; nothing changed\\n$`));
  assert.match((await ok(['key', 'list'])).stdout, new RegExp(`^${id}\\s+listed.*revoked (just now|\\d+ \\w+ ago)$`, 'm'));
  // An id of another kind is named for what it is.
  await failsWith(['token', 'revoke', id], new RegExp(`${id} is an API key, not a worker token: crowdcompute key revoke ${id}$`));
  await failsWith(['key', 'revoke', 'NoSuchKeyId1'], /no API key has the id NoSuchKeyId1 in this database: crowdcompute key list shows them$/);
});
