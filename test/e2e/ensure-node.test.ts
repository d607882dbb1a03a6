/**
 * scripts/ensure-node.sh on a machine whose node is older than 24: Node 24 goes into the
 * checkout's .node/ from the npm registry, scripts/node-path.sh puts it first on PATH (with its
 * headers for node-gyp), and the machine's node is not touched. The older node is a stand-in
 * that says it is Node 20 and runs everything else (npm included) with this Node.
 * Skips when the npm registry cannot be reached, except under CI=true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

async function registryReachable(): Promise<boolean> {
  try {
    await run('npm', ['ping'], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

test('ensure-node.sh installs Node 24 into .node/ and leaves the machine\'s older node alone', { timeout: 300_000 }, async (t) => {
  if (!(await registryReachable())) {
    if (process.env.CI === 'true') assert.fail('the npm registry is unreachable (npm ping failed), and CI=true needs this test to run');
    t.skip('the npm registry is unreachable (npm ping failed)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cc-ensure-node-'));
  try {
    // A checkout's scripts, and a machine whose `node` is older than 24.
    const checkout = join(dir, 'checkout');
    mkdirSync(join(checkout, 'scripts'), { recursive: true });
    for (const f of ['ensure-node.sh', 'node-path.sh']) copyFileSync(join(root, 'scripts', f), join(checkout, 'scripts', f));
    const machineBin = join(dir, 'machine-bin');
    mkdirSync(machineBin);
    const oldNode = join(machineBin, 'node');
    const stand = `#!/bin/sh\n# Node 20, as far as version checks go.\ncase "$1" in --version) echo v20.0.0; exit 0;; -p) echo 20; exit 0;; esac\nexec "${process.execPath}" "$@"\n`;
    writeFileSync(oldNode, stand);
    chmodSync(oldNode, 0o755);
    // A global install would land here (npm's -g prefix): it must stay empty.
    const globalPrefix = join(dir, 'global');
    mkdirSync(globalPrefix);
    const env = { ...process.env, PATH: `${machineBin}:${process.env.PATH}`, npm_config_prefix: globalPrefix, npm_config_cache: process.env.npm_config_cache ?? join(process.env.HOME ?? dir, '.npm') };
    delete (env as Record<string, string | undefined>).CROWDCOMPUTE_NODE_GLOBAL;

    const first = await run('bash', [join(checkout, 'scripts/ensure-node.sh')], { env, timeout: 240_000 });
    assert.match(first.stderr, /found Node v20\.0\.0; installing Node 24 .* into \.node\//);
    const local = join(checkout, '.node/node_modules/.bin/node');
    assert.match((await run(local, ['--version'])).stdout, /^v24\./);

    // The machine's node is as it was, and nothing was installed globally.
    assert.equal(readFileSync(oldNode, 'utf8'), stand);
    assert.deepEqual(readdirSync(globalPrefix), []);
    assert.match((await run('bash', ['-c', 'node --version'], { env })).stdout, /^v20\.0\.0/);

    // The project's scripts: node-path.sh puts .node first, with its headers for node-gyp.
    const inScripts = await run('bash', ['-c', `source ${join(checkout, 'scripts/node-path.sh')} && node --version && command -v node && echo "$npm_config_nodedir"`], { env });
    const [version, which, nodedir] = inScripts.stdout.trim().split('\n');
    assert.match(version!, /^v24\./);
    assert.equal(which, local);
    assert.ok(nodedir && existsSync(join(nodedir, 'include/node/node.h')), `npm_config_nodedir holds Node 24's headers: ${nodedir}`);
    assert.match(readFileSync(join(nodedir, 'include/node/node_version.h'), 'utf8'), /#define NODE_MAJOR_VERSION 24/);

    // A second run finds it and installs nothing.
    const second = await run('bash', [join(checkout, 'scripts/ensure-node.sh')], { env, timeout: 60_000 });
    assert.match(second.stderr, /^ensure-node: v24\.\S+ \(\.node\/, the machine's node is v20\.0\.0\)\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the project\'s scripts take their Node from scripts/node-path.sh, after ensure-node.sh', () => {
  for (const script of ['scripts/start.sh', 'scripts/test.sh']) {
    const text = readFileSync(join(root, script), 'utf8');
    const ensure = text.indexOf('bash scripts/ensure-node.sh');
    const path = text.indexOf('source scripts/node-path.sh');
    assert.ok(ensure >= 0 && path > ensure, `${script} runs ensure-node.sh, then sources node-path.sh`);
    assert.ok(!/npm install -g/.test(text), `${script} installs nothing globally`);
  }
  assert.match(readFileSync(join(root, '.ci/run'), 'utf8'), /scripts\/test\.sh/);
  assert.match(readFileSync(join(root, '.gitignore'), 'utf8'), /^\.node\/$/m);
});
