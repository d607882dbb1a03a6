import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MODULE = new URL('./local-credentials.ts', import.meta.url).href;

test('processes saving entries at the same time lose none of them (foremen started together)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-credentials-'));
  const PROCESSES = 6;
  const EACH = 40;
  try {
    const script = `const { saveLocalCredentials } = await import(${JSON.stringify(MODULE)});
const k = Number(process.argv[1]);
for (let j = 0; j < ${EACH}; j++) saveLocalCredentials({ database: 'sqlite:/db/' + k + '-' + j + '.db', urls: ['http://127.0.0.1:' + (20000 + k * 100 + j)], secret: 's' }, { persist: true });`;
    await Promise.all(Array.from({ length: PROCESSES }, (_, k) => new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--no-node-snapshot', '--conditions=crowdcompute-source', '--input-type=module', '-e', script, String(k)],
        { env: { ...process.env, CROWDCOMPUTE_CONFIG_DIR: dir }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => { err += d; });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`process ${k} exited ${code}: ${err}`))));
    })));
    const saved = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { foremen: { database: string; urls: string[] }[] };
    assert.equal(saved.foremen.length, PROCESSES * EACH, 'every entry every process saved is in the file');
    assert.ok(saved.foremen.every((e) => e.urls.length === 1), 'each with its own URL');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
