/**
 * Traces across the three sides: a foreman and a worker started by the CLI with
 * OTEL_EXPORTER_OTLP_ENDPOINT pointing at an in-process OTLP/HTTP collector, and a job submitted
 * from the SDK in this process, under a span of its own, with a tracer provider registered here
 * too. One trace must hold the client's, the foreman's and the worker's spans, each under the
 * one before it, with the handler's progress and its batch records in the worker's span.
 *
 * The foreman and the worker export only every minute here: their spans reach the collector
 * because they flush them when they stop (SIGTERM), which is what this also checks. A second
 * pair, exporting as they go, fires a schedule: its jobs' traces start at the foreman's
 * `schedule fire` span.
 */
import { after, before, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpanKind, context, trace } from '@opentelemetry/api';
import { Client } from '../../src/client/index.ts';
import { freePort, spawnForemanProcess, spawnWorkerProcess, waitFor, type ChildForeman, type ChildWorker } from '../../src/testing/index.ts';
import { startTracing, stopTracing } from '../../src/host/tracing.ts';
import { Collector, type ReceivedSpan } from '../support/otlp-collector.ts';

const HANDLERS = fileURLToPath(new URL('./fixtures/traced-handlers.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const run = promisify(execFile);

const collector = new Collector();
let dir: string;
let foreman: ChildForeman;
let worker: ChildWorker;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cc-traces-'));
  await collector.start();
  // This process is the client: its spans go to the same collector, every 100 ms.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
  await startTracing('client');
  // The foreman and the worker export only once a minute: what they send comes from their flush on SIGTERM.
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '60000' };
  foreman = await spawnForemanProcess(await freePort(), ['--database', `sqlite:${join(dir, 'cc.db')}`, '--insecure'], env);
  worker = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--handlers', HANDLERS, '--id', 'traced-worker'], env);
});

after(async () => {
  worker?.kill('SIGKILL');
  foreman?.kill('SIGKILL');
  await stopTracing();
  await collector.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('one trace spans the client, the foreman and the worker, with progress and batch records in the worker\'s span', async () => {
  const client = new Client({ url: foreman.url });
  const tracer = trace.getTracer('traces-test');
  // The caller's own span: the SDK's submit span must be its child (the active context is followed).
  const request = tracer.startSpan('checkout request');
  const requestContext = trace.setSpan(context.active(), request);
  let stepTask = '';
  let batchTask = '';
  await context.with(requestContext, async () => {
    const step = await client.submit('trace.step', { n: 21 });
    assert.deepEqual(await step.result(), { doubled: 42 });
    stepTask = step.taskId;
    assert.equal((await client.getJob(step.jobId)).traceId, request.spanContext().traceId, 'the job view names its trace');
    const batches = await client.submit('trace.batches', { count: 2 });
    assert.equal(await batches.result(), 'batches done');
    batchTask = batches.taskId;
  });
  request.end();

  // A REST submission joins the trace its `traceparent` header names.
  const restTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const restParent = '00f067aa0ba902b7';
  const rest = await fetch(`${foreman.url}/api/jobs`, {
    method: 'POST', headers: { 'content-type': 'application/json', traceparent: `00-${restTrace}-${restParent}-01` },
    body: JSON.stringify({ kind: 'tasks', tasks: [{ type: 'trace.step', input: { n: 1 } }] }),
  });
  assert.equal(rest.status, 201);
  const restJob = (await rest.json()) as { id: string; trace_id: string | null };
  assert.equal(restJob.trace_id, restTrace, 'the job view names its trace');
  await client.close();
  await waitFor(async () => (await (await fetch(`${foreman.url}/api/jobs/${restJob.id}`)).json() as { status: string }).status === 'completed',
    { timeoutMs: 30_000, message: 'the REST job completes' });

  // A client command of the CLI: its spans too are exported once a minute only, so they arrive by its flush as it exits.
  const submitted = await run(process.execPath, [BIN, 'submit', 'trace.step', '{"n": 5}', '--foreman', foreman.url], {
    env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '60000' }, timeout: 60_000,
  });
  assert.match(submitted.stdout, /10/);

  // The worker stops first (its results are committed), then the foreman: each flushes its spans as it goes.
  worker.kill('SIGTERM');
  assert.equal(await worker.exited, 0, worker.output());
  foreman.kill('SIGTERM');
  assert.equal(await foreman.exited, 0, foreman.output());
  await stopTracing();

  const traceId = request.spanContext().traceId;
  const resultCommits = () => collector.spans.filter((s) => s.traceId === traceId && s.name === 'result commit').length;
  // The CLI's submit span starts a trace of its own (no span was active in that process).
  const cliSubmit = () => collector.spans.find((s) => s.service === 'crowdcompute-client' && s.name === 'submit' && s.parentSpanId === '');
  await waitFor(() => resultCommits() === 2 && collector.spans.some((s) => s.traceId === restTrace && s.service === 'crowdcompute-worker')
    && collector.spans.some((s) => s.traceId === cliSubmit()?.traceId && s.name === 'result commit'),
  { timeoutMs: 30_000, message: 'the collector has the spans of every job from every side' });

  const services = new Set(collector.spans.filter((s) => s.traceId === traceId).map((s) => s.service));
  assert.deepEqual([...services].sort(), ['crowdcompute-client', 'crowdcompute-foreman', 'crowdcompute-worker']);

  // client submit -> foreman submit -> (queue wait, dispatch) -> worker execute -> (handler's span, result commit)
  const byTask = (taskId: string) => (s: ReceivedSpan) => s.attributes['crowdcompute.task.id'] === taskId;
  const requestSpan = collector.one(traceId, 'crowdcompute-client', 'checkout request');
  const clientSubmits = collector.spans.filter((s) => s.traceId === traceId && s.service === 'crowdcompute-client' && s.name === 'submit');
  assert.equal(clientSubmits.length, 2);
  for (const s of clientSubmits) {
    assert.equal(s.parentSpanId, requestSpan.spanId, 'the SDK\'s submit span is a child of the caller\'s span');
    assert.equal(s.kind, SpanKind.CLIENT + 1, 'OTLP numbers kinds from 1 (internal)');
  }

  const dispatch = collector.one(traceId, 'crowdcompute-foreman', 'dispatch', byTask(stepTask));
  const foremanSubmit = collector.spans.find((s) => s.spanId === dispatch.parentSpanId)!;
  assert.equal(foremanSubmit.service, 'crowdcompute-foreman');
  assert.equal(foremanSubmit.name, 'submit');
  assert.ok(clientSubmits.some((s) => s.spanId === foremanSubmit.parentSpanId), 'the foreman\'s submit span is a child of the client\'s');
  assert.equal(foremanSubmit.attributes['crowdcompute.job.id'], dispatch.attributes['crowdcompute.job.id']);
  assert.equal(collector.one(traceId, 'crowdcompute-foreman', 'queue wait', byTask(stepTask)).parentSpanId, foremanSubmit.spanId);
  assert.equal(dispatch.attributes['crowdcompute.worker.id'], 'traced-worker');

  const execute = collector.one(traceId, 'crowdcompute-worker', 'execute', byTask(stepTask));
  assert.equal(execute.parentSpanId, dispatch.spanId, 'the worker\'s span is a child of the dispatch');
  assert.equal(execute.attributes['crowdcompute.task.type'], 'trace.step');
  assert.equal(execute.attributes['crowdcompute.worker.id'], 'traced-worker');
  assert.equal(execute.attributes['crowdcompute.task.status'], 'completed');
  assert.deepEqual(execute.events.filter((e) => e.name === 'progress').map((e) => e.attributes), [{ progress: 50, message: 'half way' }]);
  assert.equal(collector.one(traceId, 'crowdcompute-worker', 'inside handler').parentSpanId, execute.spanId, 'the handler runs within the worker\'s span');
  const commit = collector.one(traceId, 'crowdcompute-foreman', 'result commit', byTask(stepTask));
  assert.equal(commit.parentSpanId, execute.spanId);
  assert.equal(commit.attributes['crowdcompute.task.status'], 'completed');

  // The batch handler's records, in its attempt's span.
  const batchExecute = collector.one(traceId, 'crowdcompute-worker', 'execute', byTask(batchTask));
  const records = batchExecute.events.filter((e) => e.name === 'record').map((e) => e.attributes);
  assert.deepEqual(records.filter((r) => r.batch !== undefined).map((r) => [r.batch, r.checkpoint, r.recorded]), [['b1', true, true], ['b2', true, true]]);

  // The CLI's job: client, foreman and worker in one trace.
  const cliTrace = cliSubmit()!.traceId;
  assert.equal(collector.one(cliTrace, 'crowdcompute-foreman', 'submit').parentSpanId, cliSubmit()!.spanId);
  assert.deepEqual(collector.one(cliTrace, 'crowdcompute-worker', 'execute').events.map((e) => e.name), ['progress']);

  // The REST job: the foreman's submit span is a child of the span the header named.
  const restSubmit = collector.one(restTrace, 'crowdcompute-foreman', 'submit');
  assert.equal(restSubmit.parentSpanId, restParent);
  assert.equal(restSubmit.attributes['crowdcompute.job.id'], restJob.id);
  assert.equal(collector.one(restTrace, 'crowdcompute-worker', 'execute').attributes['crowdcompute.task.status'], 'completed');
});

test("a schedule's fire is the root of its job's trace: the foreman's submit, dispatch and result commit and the worker's execute hang under it", async () => {
  // A foreman and a worker of their own, exporting every 100 ms: their spans arrive while they run.
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
  const scheduling = await spawnForemanProcess(await freePort(), ['--database', `sqlite:${join(dir, 'schedules.db')}`, '--insecure'], env);
  const scheduled = spawnWorkerProcess(['--foreman', scheduling.wsUrl, '--handlers', HANDLERS, '--id', 'scheduled-worker'], env);
  const client = new Client({ url: scheduling.url });
  try {
    await client.createSchedule({ id: 'traced-every-second', every: '1s', job: { kind: 'tasks', tasks: [{ type: 'trace.step', input: { n: 4 } }] } });
    const ticked = await waitFor(async () => {
      const run = (await client.getSchedule('traced-every-second')).recentRuns.find((r) => r.outcome === 'fired' && r.jobState === 'completed');
      return run?.jobId ?? null;
    }, { timeoutMs: 30_000, message: 'a tick fires a job that completes' });
    await client.pauseSchedule('traced-every-second');
    const triggered = await client.triggerSchedule('traced-every-second');
    assert.deepEqual(await triggered.result(), [{ doubled: 8 }]);

    for (const [jobId, reason] of [[ticked, 'schedule'], [triggered.id, 'trigger']] as const) {
      const job = await client.getJob(jobId);
      const traceId = job.traceId;
      assert.match(traceId ?? '', /^[0-9a-f]{32}$/, `the ${reason} job's view names its trace`);
      const arrived = (service: string, name: string) => collector.spans.some((s) => s.traceId === traceId && s.service === service && s.name === name);
      await waitFor(() => arrived('crowdcompute-foreman', 'result commit') && arrived('crowdcompute-worker', 'execute'),
        { timeoutMs: 30_000, message: `the ${reason} job's spans reach the collector` });
      const fire = collector.one(traceId!, 'crowdcompute-foreman', 'schedule fire');
      assert.equal(fire.parentSpanId, '', 'the fire is the root of the trace');
      const tick = (job.metadata as { schedule: { id: string; tick: number } }).schedule.tick;
      assert.deepEqual(fire.attributes, {
        'crowdcompute.schedule.id': 'traced-every-second', 'crowdcompute.schedule.tick': new Date(tick).toISOString(),
        'crowdcompute.schedule.reason': reason, 'crowdcompute.schedule.outcome': 'fired', 'crowdcompute.job.id': jobId,
      });
      const submit = collector.one(traceId!, 'crowdcompute-foreman', 'submit');
      assert.equal(submit.parentSpanId, fire.spanId);
      assert.equal(submit.attributes['crowdcompute.job.id'], jobId);
      const dispatch = collector.one(traceId!, 'crowdcompute-foreman', 'dispatch');
      assert.equal(dispatch.parentSpanId, submit.spanId, 'the job keeps its submit span\'s context, as a submitted job does');
      assert.equal(collector.one(traceId!, 'crowdcompute-foreman', 'queue wait').parentSpanId, submit.spanId);
      const execute = collector.one(traceId!, 'crowdcompute-worker', 'execute');
      assert.equal(execute.parentSpanId, dispatch.spanId);
      assert.equal(execute.attributes['crowdcompute.worker.id'], 'scheduled-worker');
      assert.equal(collector.one(traceId!, 'crowdcompute-foreman', 'result commit').parentSpanId, execute.spanId);
    }
  } finally {
    await client.close();
    scheduled.kill('SIGTERM');
    scheduling.kill('SIGTERM');
    await Promise.all([scheduled.exited, scheduling.exited]);
  }
});
