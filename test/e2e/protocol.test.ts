import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { RawSocket, startTestForeman, type TestForeman } from '../../src/testing/index.ts';

let foreman: TestForeman;
let client: Client;
let worker: Worker;

before(async () => {
  foreman = await startTestForeman({ maxPayloadBytes: 64 * 1024 });
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'echo', logLevel: 'silent' });
  worker.handle('echo', async (t) => t.input);
  await worker.start();
  client = new Client({ url: foreman.url });
});

after(async () => {
  await client.close();
  await worker.stop();
  await foreman.cleanup();
});

const hello = (workerId: string) => ({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId, capacity: 1, patterns: ['raw.*'], allowCode: false });

test('a frame that is not JSON gets CC_ERR_BAD_JSON and the connection stays usable', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send('{"type": "hello", oops');
  const err = await s.next((m) => m.type === 'error');
  assert.equal(err.code, 'CC_ERR_BAD_JSON');
  assert.match(err.message, /not valid JSON/);
  s.send(hello('raw-1'));
  const welcome = await s.next((m) => m.type === 'welcome');
  assert.equal(welcome.workerId, 'raw-1');
  await s.close();
});

test('an unknown message type gets CC_ERR_UNKNOWN_MESSAGE naming the type', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send({ type: 'launch_rockets', requestId: 'r1' });
  const err = await s.next((m) => m.type === 'error');
  assert.equal(err.code, 'CC_ERR_UNKNOWN_MESSAGE');
  assert.equal(err.requestId, 'r1');
  assert.match(err.message, /launch_rockets/);
  await s.close();
});

test('a message that fails the schema gets CC_ERR_BAD_MESSAGE naming the field; others in the same frame still work', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send([{ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'raw-2', capacity: -5, patterns: [], allowCode: false }, 42, hello('raw-3')]);
  const err1 = await s.next((m) => m.type === 'error' && m.code === 'CC_ERR_BAD_MESSAGE' && /capacity/.test(m.message));
  assert.ok(err1);
  const err2 = await s.next((m) => m.type === 'error' && /"type"/.test(m.message));
  assert.equal(err2.code, 'CC_ERR_BAD_MESSAGE');
  const welcome = await s.next((m) => m.type === 'welcome');
  assert.equal(welcome.workerId, 'raw-3');
  await s.close();
});

test('worker messages before hello get CC_ERR_NOT_HELLO', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send({ type: 'task_result', taskId: 't', attempt: 1, status: 'completed', result: 1 });
  const err = await s.next((m) => m.type === 'error');
  assert.equal(err.code, 'CC_ERR_NOT_HELLO');
  await s.close();
});

test('an oversized frame gets CC_ERR_PAYLOAD_TOO_LARGE naming the limit; other work carries on', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send({ type: 'submit_job', requestId: 'big', job: { kind: 'tasks', tasks: [{ type: 'echo', input: 'x'.repeat(100 * 1024) }] } });
  const err = await s.next((m) => m.type === 'error');
  assert.equal(err.code, 'CC_ERR_PAYLOAD_TOO_LARGE');
  assert.match(err.message, /64\.0 KiB/);
  assert.equal(await (await client.submit('echo', { ok: true })).result().then((r) => JSON.stringify(r)), '{"ok":true}');
  await s.close();
});

test('a protocol version the foreman does not speak is refused', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send({ ...hello('raw-old'), protocol: '0.9' });
  const err = await s.next((m) => m.type === 'error');
  assert.equal(err.code, 'CC_ERR_PROTOCOL_VERSION');
  assert.equal(await s.closed, 4002);
});

test('a raw client can submit a job, get it accepted after commit, and receive its results pushed', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send({ type: 'submit_job', requestId: 'q1', job: { kind: 'tasks', tasks: [{ type: 'echo', input: [1, 2] }, { type: 'echo', input: 'b' }] } });
  const accepted = await s.next((m) => m.type === 'job_accepted');
  assert.equal(accepted.requestId, 'q1');
  assert.equal(accepted.totalTasks, 2);
  const done = await s.next((m) => m.type === 'job_completed');
  assert.equal(done.jobId, accepted.jobId);
  assert.equal(done.state, 'completed');
  assert.deepEqual(done.results, [[1, 2], 'b']);
  s.send({ type: 'subscribe_job', jobId: accepted.jobId, requestId: 'again' });
  const again = await s.next((m) => m.type === 'job_completed');
  assert.deepEqual(again.results, [[1, 2], 'b'], 'subscribing to a finished job answers at once');
  s.send({ type: 'subscribe_job', jobId: 'no-such-job', requestId: 'nf' });
  const nf = await s.next((m) => m.type === 'error' && m.requestId === 'nf');
  assert.equal(nf.code, 'CC_ERR_JOB_NOT_FOUND');
  await s.close();
});

test('a result for a task the worker does not hold is refused and not recorded', async () => {
  const s = await RawSocket.open(foreman.wsUrl);
  s.send(hello('forger'));
  await s.next((m) => m.type === 'welcome');
  const task = await client.submit('never.handled', {});
  s.send({ type: 'task_result', taskId: task.taskId, attempt: 1, status: 'completed', result: 'forged' });
  const ack = await s.next((m) => m.type === 'result_ack');
  assert.deepEqual(ack.tasks, [{ taskId: task.taskId, attempt: 1 }]);
  const t = await client.getTask(task.taskId);
  assert.equal(t.status, 'queued');
  assert.equal(t.result, null);
  await client.cancel(task.jobId);
  await s.close();
});
