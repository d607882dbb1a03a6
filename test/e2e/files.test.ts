/**
 * Files attached to tasks, as the DistWorker SDK has them: uploaded through the SDK, REST and
 * the CLI, carried by tasks, read by their handlers through a signed link (getFileById,
 * getFilesByName, readFile), with the job's metadata (getMetadata); refused when unknown,
 * another owner's, or too large.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/index.ts';
import { Worker, type TaskInfo } from '../../src/worker/index.ts';
import { startTestForeman } from '../../src/testing/index.ts';

const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

/** An API key of its own (another owner than the admin key), made with the CLI. */
function makeKey(foreman: { databaseUrl: string }, scopes: string): Promise<string> {
  return new Promise((resolve, reject) => execFile(process.execPath, [BIN, 'key', 'create', '--scopes', scopes, '--database', foreman.databaseUrl],
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()))));
}

test('files: uploaded by SDK, REST and CLI, carried by tasks, read by handlers; unknown, foreign and oversized ones refused', async () => {
  const foreman = await startTestForeman({ maxFileBytes: 1024 });
  const client = new Client({ url: foreman.url });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w1', logLevel: 'silent' })
    .handle('files.read', async (task: TaskInfo) => {
      const named = task.getFilesByName('notes.txt');
      const byId = task.getFileById(task.getInput('want'));
      return {
        names: task.files.map((f) => `${f.filename}:${f.size}`),
        notes: new TextDecoder().decode(await task.readFile(named[0])),
        wanted: byId ? Array.from(await task.readFile(byId.fileId)) : null,
        project: task.getMetadata('project', 'none'),
      };
    });
  try {
    await worker.start();
    const notes = await client.uploadFile('hello from a file', 'notes.txt');
    assert.equal(notes.size, 17);
    assert.match(notes.sha256, /^[0-9a-f]{64}$/);
    // Over REST: the body is the bytes.
    const res = await foreman.fetch('/api/files?filename=data.bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array([7, 8, 9]) });
    assert.equal(res.status, 201);
    const bin = await res.json();
    const task = await client.submit('files.read', { want: bin.file_id }, { files: [notes.fileId, bin.file_id], metadata: { project: 'atlas' } });
    assert.deepEqual(await task.result(), { names: ['notes.txt:17', 'data.bin:3'], notes: 'hello from a file', wanted: [7, 8, 9], project: 'atlas' });
    assert.equal((await client.getJobTasks(task.jobId))[0].status, 'completed');
    assert.deepEqual(Array.from(await client.downloadFile(bin.file_id)), [7, 8, 9]);
    assert.equal((await (await foreman.fetch(`/api/files/${notes.fileId}`)).json()).job_id, task.jobId, 'attached to the job that carries it');

    // The CLI: upload and attach in one step.
    const path = join(foreman.dir, 'notes.txt');
    writeFileSync(path, 'from the command line');
    const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, [BIN, 'submit', 'files.read', '{"want":"none"}', '--file', path, '--foreman', foreman.url],
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
    assert.equal(JSON.parse(out).notes, 'from the command line');
    assert.equal(JSON.parse(out).project, 'none', 'getMetadata gives the default when the job has none');

    // Refusals: an unknown file, a link without a signature, a file over the limit.
    await assert.rejects(client.submit('files.read', {}, { files: ['no-such-file'] }), /no file has the id no-such-file/);
    assert.equal((await fetch(`${foreman.url}/api/files/${notes.fileId}/download`)).status, 401, 'no key, no signed link: refused');
    assert.equal((await fetch(`${foreman.url}/api/files/${notes.fileId}/download?expires=${Date.now() + 60_000}&sig=forged`)).status, 401);
    await assert.rejects(client.uploadFile(new Uint8Array(2048), 'big.bin'), /CC_ERR_PAYLOAD_TOO_LARGE: the file exceeds 1.0 KiB, the foreman's limit \(--max-file-size\)/);
    // Another owner's file cannot be given to a task.
    const other = await foreman.fetch('/api/files?filename=x', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    const readOnly = new Client({ url: foreman.url, apiKey: await makeKey(foreman, 'submit') });
    try {
      await assert.rejects(readOnly.submit('files.read', {}, { files: [(await other.json()).file_id] }), /no file has the id/);
    } finally {
      await readOnly.close();
    }
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});
