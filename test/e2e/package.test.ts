/**
 * What users install is the packed tarball. This packs it, installs it into a new project
 * outside the checkout, and uses it the way a user would: every subpath imported from plain
 * ESM JavaScript, a strict `nodenext` TypeScript consumer typechecked (no skipLibCheck), the
 * CLI's --help, and the README's example (a map job and a named task against a foreman
 * started from the installed package).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const SUBPATHS = ['foreman', 'worker', 'client', 'protocol', 'testing'];

test('the packed tarball installs into a new project and works from node_modules', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-package-'));
  const sh = (cmd: string, args: string[], cwd = dir) =>
    run(cmd, args, { cwd, timeout: 240_000, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
  try {
    // npm pack runs the build (prepare), so the tarball holds what src/ compiles to now.
    await sh('npm', ['pack', '--pack-destination', dir, '--silent'], root);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a tarball');
    const { stdout: listing } = await sh('tar', ['tzf', tarball!]);
    const files = listing.split('\n').filter(Boolean);
    assert.ok(files.includes('package/dist/client/index.js') && files.includes('package/dist/client/index.d.ts'), 'compiled code and declarations ship');
    assert.deepEqual(files.filter((f) => /\.test\.|conformance|^package\/src\/|^package\/test\//.test(f)), [], 'no sources, tests or conformance suite');

    const app = join(dir, 'app');
    await sh('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball!)], app);

    // Threads and child processes are started from files named at run time (new Worker(path)),
    // which the compiler does not rewrite: a .ts file named as a plain string in the built code
    // is one the package does not have (the WAL checkpointer's thread once never started from
    // node_modules). Names chosen at run time (`.ts` when running from source) are not plain strings.
    const dist = join(app, 'node_modules/crowdcompute/dist');
    const namesTs = (readdirSync(dist, { recursive: true }) as string[]).filter((f) => f.endsWith('.js'))
      .flatMap((f) => [...readFileSync(join(dist, f), 'utf8').matchAll(/['"`]([^'"`\s$]*\w\.ts)['"`]/g)].filter((m) => !m[1]!.endsWith('.d.ts')).map((m) => `${f}: ${m[1]}`));
    assert.deepEqual(namesTs, [], 'the built code names no .ts file');

    // Plain ESM JavaScript: every subpath imports, and has its main exports.
    writeFileSync(join(app, 'imports.mjs'), `${SUBPATHS.map((s) => `import * as ${s} from 'crowdcompute/${s}';`).join('\n')}
console.log(JSON.stringify({ ${SUBPATHS.map((s) => `${s}: Object.keys(${s}).sort()`).join(', ')} }));\n`);
    const exported = JSON.parse((await sh(process.execPath, ['imports.mjs'], app)).stdout);
    for (const [subpath, name] of [['foreman', 'startForeman'], ['worker', 'Worker'], ['client', 'Client'], ['protocol', 'JobSpecSchema'], ['testing', 'waitFor']]) {
      assert.ok(exported[subpath].includes(name), `crowdcompute/${subpath} exports ${name}`);
    }

    // A strict nodenext TypeScript consumer: the README's example and every subpath, zero errors, no skipLibCheck.
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const example = /## From TypeScript[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)![1];
    writeFileSync(join(app, 'example.ts'), example);
    writeFileSync(join(app, 'subpaths.ts'), `import { FOREMAN_DEFAULTS, type ForemanOptions } from 'crowdcompute/foreman';
import { WorkerRuntime, NonRetryableError, type TaskHandler } from 'crowdcompute/worker';
import { JobFailedError, type JobInfo, type MapOptions } from 'crowdcompute/client';
import { PRIORITIES, type JobSpec, type TaskView } from 'crowdcompute/protocol';
import { startTestForeman, waitFor, RawSocket } from 'crowdcompute/testing';
const options: ForemanOptions = { port: FOREMAN_DEFAULTS.port };
const handler: TaskHandler<{ n: number }, number> = (task) => { if (task.input.n < 0) throw new NonRetryableError('negative'); return task.input.n; };
const spec: JobSpec = { kind: 'tasks', tasks: [{ type: 'x', input: 1 }], priority: PRIORITIES[0] };
const info = (j: JobInfo): number => j.totalTasks + j.completedTasks;
const view = (t: TaskView): string | null => t.worker_id;
const mapOptions: MapOptions = { chunkSize: 2, onProgress: (p) => console.log(p.fraction) };
export { options, handler, spec, info, view, mapOptions, WorkerRuntime, JobFailedError, startTestForeman, waitFor, RawSocket };
`);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: [] },
      include: ['example.ts', 'subpaths.ts'],
    }));
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const checked = await sh(process.execPath, [tsc, '-p', 'tsconfig.json'], app).catch((err: { stdout: string }) => err);
    assert.equal(checked.stdout.trim(), '', 'the consumer typechecks with no error');

    const help = await sh('npx', ['--no-install', 'crowdcompute', '--help'], app);
    assert.match(help.stdout, /Usage: crowdcompute/);
    for (const cmd of ['foreman', 'worker', 'map', 'submit', 'demo']) assert.match(help.stdout, new RegExp(`\\b${cmd}\\b`));

    // The README's example, as printed, from the installed package: a map job and a named task.
    // Run as the README says, without --no-node-snapshot: the worker's sandbox processes (the
    // compiled dist/ ones) start with it by themselves.
    const ran = await sh(process.execPath, ['example.ts'], app);
    assert.match(ran.stdout, /squares \[1,4,9,16,25\]/);
    assert.match(ran.stdout, /math\.add \{"result":3\}/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
