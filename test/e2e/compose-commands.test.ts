/**
 * Docker cannot run on the CI machines, so this runs what compose.yaml and the Dockerfile
 * would run, outside Docker: every service's `command:` through the image's ENTRYPOINT, with
 * the compose hostnames replaced by 127.0.0.1 and free ports, the credentials volume by a
 * temporary directory, PostgreSQL on a fresh schema, and a secret in CROWDCOMPUTE_SECRET as
 * .env would give it; the set-up service first, then the rest; then the operator's step
 * (an admin key made with the CLI), a job through the workers, and the HEALTHCHECK command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { Client } from '../../src/client/index.ts';
import { freePort, waitFor } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pgUrl = await testPostgresUrl();

/** `service -> command` from compose.yaml (each command is a one-line flow list, i.e. JSON). */
function composeCommands(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let service = '';
  for (const line of readFileSync(`${root}/compose.yaml`, 'utf8').split('\n')) {
    const s = /^ {2}([a-z0-9-]+):\s*$/.exec(line);
    if (s) service = s[1];
    const c = /^ {4}command:\s*(\[.*\])\s*$/.exec(line);
    if (c) out.set(service, JSON.parse(c[1]) as string[]);
  }
  return out;
}

function dockerfileJson(instruction: 'ENTRYPOINT' | 'HEALTHCHECK'): string[] {
  const text = readFileSync(`${root}/Dockerfile`, 'utf8').replace(/\\\n\s*/g, ' ');
  const line = text.split('\n').find((l) => l.startsWith(`${instruction} `))!;
  return JSON.parse(line.slice(line.indexOf('[')));
}

test('every command of compose.yaml, run outside Docker: two foremen on PostgreSQL, three workers, a job through them; the HEALTHCHECK passes', { skip: pgUrl ? false : 'no PostgreSQL reachable' }, async () => {
  const commands = composeCommands();
  assert.deepEqual([...commands.keys()].sort(), ['foreman-1', 'foreman-2', 'setup', 'worker-1', 'worker-2', 'worker-3']);
  const entry = dockerfileJson('ENTRYPOINT');
  assert.deepEqual(entry.slice(0, 2), ['node', '--no-node-snapshot']);
  const schema = `cc_compose_${process.pid}`;
  const ports = new Map<string, number>();
  for (const name of commands.keys()) ports.set(name, await freePort());
  const volume = mkdtempSync(join(tmpdir(), 'cc-compose-credentials-'));
  const env = { ...process.env, CROWDCOMPUTE_SECRET: randomBytes(32).toString('base64') };
  const localize = (args: string[], name: string) => args.map((a) => a
    .replace('postgres://postgres@postgres:5432/crowdcompute', `${pgUrl}?schema=${schema}`)
    .replace(/^\/credentials\//, `${volume}/`)
    .replace(/ws:\/\/(foreman-\d):8000/g, (_m, f: string) => `ws://127.0.0.1:${ports.get(f)}`))
    .map((a, i, all) => (all[i - 1] === '--port' || all[i - 1] === '--status-port' ? String(ports.get(name)) : a));
  const children: ChildProcess[] = [];
  const run = promisify(execFile);
  const cli = (args: string[]) => run(process.execPath, [...entry.slice(1), ...args], { cwd: root, env });
  let client: Client | null = null;
  try {
    // setup runs to completion first (depends_on: service_completed_successfully), twice to show
    // it is idempotent.
    for (let i = 0; i < 2; i++) await cli(localize(commands.get('setup')!, 'setup'));
    assert.match(readFileSync(join(volume, 'worker-token'), 'utf8'), /^cct_/);
    for (const [name, args] of commands) {
      if (name === 'setup') continue;
      const child = spawn(process.execPath, [...entry.slice(1), ...localize(args, name), '--log-level', 'warn'], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', () => {});
      children.push(child);
    }
    // The operator's step from compose.yaml's header: an admin key for the API.
    const { stdout: apiKey } = await cli(['key', 'create', '--scopes', 'admin', '--database', `${pgUrl}?schema=${schema}`]);
    client = new Client({ url: `http://127.0.0.1:${ports.get('foreman-2')}`, apiKey: apiKey.trim() });
    const c = client;
    await waitFor(async () => (await c.workers()).filter((w) => w.status === 'online').length === 3 || null, { timeoutMs: 30_000, message: 'three workers online' });
    assert.deepEqual(await c.map((x: number) => x + 1, [1, 2, 3]), [2, 3, 4]);
    assert.deepEqual(await (await c.submit('math.add', { a: 2, b: 3 })).result(), { result: 5 });
    const health = dockerfileJson('HEALTHCHECK'); // the exec form after CMD
    for (const name of ['foreman-1', 'worker-1']) {
      await run(health[0] === 'node' ? process.execPath : health[0], health.slice(1), { env: { ...process.env, HEALTH_PORT: String(ports.get(name)) } });
    }
  } finally {
    await client?.close();
    rmSync(volume, { recursive: true, force: true });
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    const c = new pg.Client({ connectionString: pgUrl! });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
});
