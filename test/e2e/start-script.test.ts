/**
 * What `bash scripts/start.sh` (crowdcompute demo) and `crowdcompute foreman` do when they
 * cannot start, and what start.sh prints when they can: a busy port is named with the fix before
 * anything is written; a database set up with another secret names the way forward; start.sh's
 * --help lists the demo's options, as the README does; the commands it prints can be pasted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Foreman, startForeman } from '../../src/foreman/index.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/crowdcompute.js');

/** Run the CLI with its own config directory; resolves with its exit code and output whatever the code. */
async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, resolve));
  return { server, port: (server.address() as { port: number }).port };
}

test('a busy port: demo and foreman name it and the fix, and write no database and no credentials file', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-busy-'));
  const { server, port } = await holdPort();
  try {
    const env = { CROWDCOMPUTE_CONFIG_DIR: join(dir, 'config') };
    for (const command of ['demo', 'foreman']) {
      const db = join(dir, `${command}.db`);
      const r = await cli([command, '--port', String(port), '--database', `sqlite:${db}`, ...(command === 'demo' ? ['--exit'] : ['--host', '127.0.0.1'])], env);
      assert.equal(r.code, 1, `${command} exits 1`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${command}: one line, got:\n${r.stderr}`);
      assert.match(lines[0]!, new RegExp(`^crowdcompute: port ${port} on 127\\.0\\.0\\.1 is already in use`));
      assert.match(lines[0]!, /--port <n>/);
      assert.match(lines[0]!, /stop what holds it/);
      assert.equal(existsSync(db), false, `${command} created no database file`);
      assert.equal(existsSync(join(dir, 'config', 'credentials.json')), false, `${command} wrote no credentials file`);
    }
    // The same from the SDK: refused before the store opens, and stop() after it is safe.
    const db = join(dir, 'sdk.db');
    const foreman = new Foreman({ port, host: '127.0.0.1', database: `sqlite:${db}`, logLevel: 'silent' });
    await assert.rejects(foreman.start(), new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
    await foreman.stop();
    assert.equal(existsSync(db), false);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a database set up with another secret: the error names the secret, the credentials file and how to start afresh, and the secret it names works', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-secret-'));
  const db = join(dir, 'cc.db');
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, 'the-first-deployment-secret-0123456789\n');
  try {
    // Set up by a foreman whose credentials file is elsewhere (another user, another CROWDCOMPUTE_CONFIG_DIR).
    const before = process.env.CROWDCOMPUTE_CONFIG_DIR;
    process.env.CROWDCOMPUTE_CONFIG_DIR = join(dir, 'first-config');
    const first = await startForeman({ port: 0, host: '127.0.0.1', database: `sqlite:${db}`, logLevel: 'silent', secret: readFileSync(secretFile, 'utf8').trim() });
    await first.stop();
    if (before === undefined) delete process.env.CROWDCOMPUTE_CONFIG_DIR; else process.env.CROWDCOMPUTE_CONFIG_DIR = before;

    const env = { CROWDCOMPUTE_CONFIG_DIR: join(dir, 'config') };
    const fresh = await cli(['demo', '--port', '0', '--database', `sqlite:${db}`, '--exit'], env);
    assert.equal(fresh.code, 1);
    const line = fresh.stderr.trim();
    assert.equal(line.split('\n').length, 1, line);
    assert.match(line, new RegExp(`the database sqlite:${db.replace(/[.]/g, '\\.')} was set up with another secret than a new secret`));
    assert.ok(line.includes(join(dir, 'config', 'credentials.json')), `names the credentials file: ${line}`);
    assert.match(line, /CROWDCOMPUTE_SECRET or --secret-file/);
    assert.ok(line.includes(`delete ${db}`), `names the file to delete to start afresh: ${line}`);

    const given = await cli(['demo', '--port', '0', '--database', `sqlite:${db}`, '--exit'], { ...env, CROWDCOMPUTE_SECRET: 'not-the-secret-it-was-set-up-with-000' });
    assert.equal(given.code, 1);
    assert.match(given.stderr, /another secret than the secret given \(CROWDCOMPUTE_SECRET or --secret-file\)/);

    // The way forward it names: the secret the database was set up with.
    const right = await cli(['demo', '--port', '0', '--database', `sqlite:${db}`, '--ranges', '4', '--workers', '1', '--exit', '--secret-file', secretFile], env);
    assert.equal(right.code, 0, right.stderr);
    assert.match(right.stderr, /result: 148933 primes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start.sh --help lists the demo\'s options, and the README names each of them', { timeout: 120_000 }, async () => {
  const { stdout } = await run('bash', [join(root, 'scripts/start.sh'), '--help'], { cwd: root, timeout: 120_000 });
  assert.match(stdout, /Usage: crowdcompute demo/);
  assert.match(stdout, /scripts\/start\.sh/);
  const options = [...stdout.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]!).filter((o) => o !== '--help');
  assert.deepEqual(options, ['--port', '--database', '--workers', '--ranges', '--exit', '--secret-file']);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = /## Two commands([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
  for (const o of options) assert.ok(section.includes(o), `the README's "Two commands" names start.sh's ${o}`);
});

test('the commands start.sh prints can be pasted in a checkout: bin/crowdcompute.js …', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-paste-'));
  const env = { ...process.env, CROWDCOMPUTE_CONFIG_DIR: join(dir, 'config') };
  const demo = spawn(process.execPath, [bin, 'demo', '--port', '0', '--database', `sqlite:${join(dir, 'demo.db')}`, '--ranges', '4', '--workers', '1'],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => demo.once('exit', resolve));
  try {
    let out = '';
    let err = '';
    demo.stderr.on('data', (d) => { err += d; });
    await new Promise<void>((resolve, reject) => {
      demo.stdout.on('data', (d) => { out += d; if (out.includes('Ctrl-C to stop.')) resolve(); });
      demo.once('exit', (code) => reject(new Error(`the demo ended (${code}) before it was ready: ${err}`)));
    });
    assert.doesNotMatch(out, /(^|\s)crowdcompute (key|worker|jobs)/m, 'no command it prints needs crowdcompute on PATH');
    const jobs = /the jobs: (bin\/crowdcompute\.js jobs[^\n]*?)\s{2,}/.exec(out)?.[1];
    assert.ok(jobs, `prints the jobs command: ${out}`);
    assert.match(out, /make one: bin\/crowdcompute\.js key create --scopes read/);
    const { stdout } = await run('bash', ['-c', jobs], { cwd: root, env, timeout: 120_000 });
    assert.match(stdout, /demo: primes below 2,000,000/);
  } finally {
    demo.kill('SIGINT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
