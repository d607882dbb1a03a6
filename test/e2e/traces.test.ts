/**
 * Traces across the three sides: a foreman and a worker started by the CLI with
 * OTEL_EXPORTER_OTLP_ENDPOINT pointing at an in-process OTLP/HTTP collector, and a job submitted
 * from the SDK in this process, under a span of its own, with a tracer provider registered here
 * too. One trace must hold the client's, the foreman's and the worker's spans, each under the
 * one before it, with the handler's progress and its batch records in the worker's span.
 *
 * The foreman and the worker export only every minute here: their spans reach the collector
 * because they flush them when they stop (SIGTERM), which is what this also checks.
 */
import { after, before, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpanKind, context, trace } from '@opentelemetry/api';
import { Client } from '../../src/client/index.ts';
import { freePort, spawnForemanProcess, spawnWorkerProcess, waitFor, type ChildForeman, type ChildWorker } from '../../src/testing/index.ts';
import { startTracing, stopTracing } from '../../src/host/tracing.ts';

const HANDLERS = fileURLToPath(new URL('./fixtures/traced-handlers.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const run = promisify(execFile);

/** A span as the collector received it, with its service's name. */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
}

type OtlpValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type OtlpAttribute = { key: string; value: OtlpValue };

/** OTLP/JSON ids are hex; the protobuf-JSON mapping would give base64. Either way, hex. */
function hexId(id: string | undefined): string {
  if (!id) return '';
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function attributes(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of list ?? []) {
    const v = a.value;
    out[a.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue ?? v.boolValue);
  }
  return out;
}

/** An OTLP/HTTP collector on 127.0.0.1 that keeps every span it is sent. */
class Collector {
  readonly spans: ReceivedSpan[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') { res.writeHead(404).end(); return; }
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const doc = JSON.parse(body.toString('utf8')) as {
          resourceSpans?: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: {
            traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttribute[];
            events?: { name: string; attributes?: OtlpAttribute[] }[];
          }[] }[] }[];
        };
        for (const rs of doc.resourceSpans ?? []) {
          const service = String(attributes(rs.resource?.attributes)['service.name']);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              this.spans.push({
                service, traceId: hexId(s.traceId), spanId: hexId(s.spanId), parentSpanId: hexId(s.parentSpanId), name: s.name, kind: s.kind,
                attributes: attributes(s.attributes), events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The one span named so in that service and trace (that matches `where`, if given). */
  one(trace: string, service: string, name: string, where: (s: ReceivedSpan) => boolean = () => true): ReceivedSpan {
    const found = this.spans.filter((s) => s.traceId === trace && s.service === service && s.name === name && where(s));
    assert.equal(found.length, 1, `one ${service} span "${name}" in trace ${trace}; got ${found.length} of ${JSON.stringify(this.spans.map((s) => [s.service, s.name, s.traceId]))}`);
    return found[0];
  }
}

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
