/**
 * Map jobs whose function is written in Python, as the foreman takes them: submitted by the
 * TypeScript client (`{ python: source }`), over REST and by `crowdcompute map module.py:fn`;
 * stored with their language on both stores; refused at submission when the source is not one
 * top-level `def`; handed to workers with `languages` beside the code; shown by
 * `GET /api/jobs/{id}/code`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/index.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { RawSocket, startTestForeman, waitFor } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const pgUrl = await testPostgresUrl();
const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

const COLLATZ = `def collatz_steps(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps
`;

for (const store of ['sqlite', 'postgres'] as const) {
  test(`a Python map job is stored with its language and handed out with it (${store})`, { skip: store === 'postgres' && !pgUrl ? 'no PostgreSQL' : false }, async () => {
    const foreman = await startTestForeman(store === 'postgres' ? { database: `${pgUrl}?schema=pymap_${Date.now()}` } : {});
    const client = new Client({ url: foreman.url });
    try {
      const job = await client.submitMap({ python: COLLATZ, name: 'collatz_steps' }, [1, 2, 3], { chunkSize: 2 });
      const info = await client.getJob(job.id);
      assert.equal(info.label, 'collatz_steps');
      const rest = await (await fetch(`${foreman.url}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${foreman.credentials!.apiKey}` } })).json();
      assert.equal(rest.language, 'python');
      const code = await (await fetch(`${foreman.url}/api/jobs/${job.id}/code`, { headers: { authorization: `Bearer ${foreman.credentials!.apiKey}` } })).json();
      assert.deepEqual(code, { job_id: job.id, language: 'python', function_name: 'collatz_steps', source: COLLATZ });

      // A worker that runs only JavaScript (a hello without codeLanguages) is given the
      // JavaScript job's tasks, never the Python one's.
      const js = await client.submitMap((x: number) => x + 1, [1]);
      const jsOnly = await RawSocket.open(foreman.wsUrl);
      jsOnly.send({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'raw-js', capacity: 10, patterns: [], allowCode: true, running: [] });
      const jsAssign = await jsOnly.next((m) => m.type === 'assign_tasks');
      assert.deepEqual(jsAssign.tasks.map((t: { jobId: string }) => t.jobId), [js.id]);
      assert.equal(jsAssign.languages, undefined);
      await jsOnly.close();

      // A worker that runs Python gets the source once, with its language beside it.
      const s = await RawSocket.open(foreman.wsUrl);
      s.send({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'raw-python', capacity: 2, patterns: [], allowCode: true, codeLanguages: ['python'], running: [] });
      const assign = await s.next((m) => m.type === 'assign_tasks');
      assert.equal(assign.code[job.id], COLLATZ);
      assert.deepEqual(assign.languages, { [job.id]: 'python' });
      assert.ok(assign.tasks.every((t: { jobId: string; type: string }) => t.jobId === job.id && t.type === 'map.python'));
      await s.close();

      assert.equal((await (await fetch(`${foreman.url}/api/jobs/${js.id}`, { headers: { authorization: `Bearer ${foreman.credentials!.apiKey}` } })).json()).language, 'javascript');
      await js.cancel();
      await job.cancel();
    } finally {
      await client.close();
      await foreman.cleanup();
    }
  });
}

test('a Python source that is not one top-level def is refused at submission, naming why', async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  try {
    for (const [source, why] of [
      ['x = 1\n', /no `def` at its top level/],
      ['import math\ndef f(x):\n    return math.sqrt(x)\n', /line 1: .*exactly one top-level `def`.*import math/],
      ['def f(x):\n    return x\ndef g(x):\n    return x\n', /line 3: .*exactly one top-level `def`/],
      ['@cache\ndef f(x):\n    return x\n', /line 1: .*@cache/],
      ['async def f(x):\n    return x\n', /not `async def`/],
    ] as const) {
      await assert.rejects(client.submitMap({ python: source }, [1]), (e: Error & { code?: string }) => e.code === 'CC_ERR_CODE_COMPILE' && why.test(e.message));
    }
    const res = await fetch(`${foreman.url}/api/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${foreman.credentials!.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'map', language: 'python', code: 'print("hi")\n', args: [1] }),
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, 'CC_ERR_CODE_COMPILE');
    const cobol = await fetch(`${foreman.url}/api/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${foreman.credentials!.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'map', language: 'cobol', code: 'x', args: [1] }),
    });
    assert.equal(cobol.status, 400);
  } finally {
    await client.close();
    await foreman.cleanup();
  }
});

test('crowdcompute map module.py:function ships that function as written in the file', async () => {
  const foreman = await startTestForeman();
  const dir = mkdtempSync(join(tmpdir(), 'cc-pymap-'));
  const client = new Client({ url: foreman.url });
  try {
    writeFileSync(join(dir, 'steps.py'), `import sys\n\nLIMIT = 10\n\n${COLLATZ}\n# the end\ndef other(x):\n    return x\n`);
    writeFileSync(join(dir, 'inputs.json'), '[1, 2, 3]');
    // No worker runs it here: the command is left waiting and stopped once the job is there.
    const child = execFile(process.execPath, [BIN, 'map', `${join(dir, 'steps.py')}:collatz_steps`, join(dir, 'inputs.json'), '--foreman', foreman.url], { timeout: 60_000 });
    const job = await waitFor(async () => (await client.listJobs({}))[0] ?? null, { message: 'the map command submits its job' });
    child.kill();
    const code = await (await fetch(`${foreman.url}/api/jobs/${job.id}/code`, { headers: { authorization: `Bearer ${foreman.credentials!.apiKey}` } })).json();
    assert.equal(code.language, 'python');
    assert.equal(code.source, COLLATZ);
    assert.equal(code.function_name, 'collatz_steps');
  } finally {
    await client.close();
    await foreman.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
