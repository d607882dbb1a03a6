/**
 * Task graphs through the CLI, the SDK and REST: the pipeline example's exact result; a
 * downstream node working while its upstream node still writes; workers SIGKILLed in the
 * middle of two nodes and the foreman SIGKILLed and restarted mid-graph, on SQLite and on
 * PostgreSQL, with the result still exact, no batch done before a crash done again (beyond
 * the one in flight) and no artifact counted twice; a graph cancelled mid-run; a node that
 * fails permanently failing the graph, and one that fails transiently retrying.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/index.ts';
import { freePort, localApiKeyAt, spawnForemanProcess, spawnWorkerProcess, waitFor, type ChildWorker } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/pipeline-handlers.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/pipeline/graph.json', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const SQUARES_TO_100K = 333338333350000;
const pgUrl = await testPostgresUrl();
const localKey = (url: string) => localApiKeyAt(url) ?? '';

/** The example graph, each batch slowed down so that the test can act in the middle of it. */
function slowPipeline(numbersDelayMs: number, sumsDelayMs: number) {
  const spec = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
  spec.nodes[0].input.delayMs = numbersDelayMs;
  spec.nodes[1].input = { delayMs: sumsDelayMs };
  return spec;
}

/** Batches processed per node, and the uids processed more than once. */
function executions(log: string): Map<string, { runs: number; again: string[] }> {
  const seen = new Map<string, Set<string>>();
  const out = new Map<string, { runs: number; again: string[] }>();
  if (!existsSync(log)) return out;
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [node, , uid] = line.split(' ');
    const s = seen.get(node) ?? seen.set(node, new Set()).get(node)!;
    const o = out.get(node) ?? out.set(node, { runs: 0, again: [] }).get(node)!;
    o.runs++;
    if (s.has(uid)) o.again.push(uid); else s.add(uid);
  }
  return out;
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const { default: pgm } = await import('pg');
  const c = new pgm.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
}

async function setup(database?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'cc-graph-'));
  const port = await freePort();
  const foremanArgs = ['--database', database ?? `sqlite:${join(dir, 'cc.db')}`, '--heartbeat-interval', '300ms', '--lease-ttl', '3s'];
  const env = { CROWDCOMPUTE_CONFIG_DIR: join(dir, 'config'), CC_EXEC_LOG: join(dir, 'exec.log'), CC_STOP_LOG: join(dir, 'stops.log') };
  let foreman = await spawnForemanProcess(port, foremanArgs, env);
  process.env.CROWDCOMPUTE_CONFIG_DIR = env.CROWDCOMPUTE_CONFIG_DIR;
  const client = new Client({ url: foreman.url });
  const workers: ChildWorker[] = [];
  const worker = (id: string) => {
    const w = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', id, '--handlers', FIXTURE, '--concurrency', '3', '--reconnect-interval', '100'], env);
    workers.push(w);
    return w;
  };
  return {
    dir, env, client, worker,
    get foreman() { return foreman; },
    async restartForeman() {
      foreman.kill('SIGKILL');
      await foreman.exited;
      foreman = await spawnForemanProcess(port, foremanArgs, env);
    },
    async close() {
      for (const w of workers) w.kill('SIGKILL');
      await client.close();
      foreman.kill('SIGTERM');
      await foreman.exited;
      delete process.env.CROWDCOMPUTE_CONFIG_DIR;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const artifactsOf = async (client: Client, graphId: string, node: string) => {
  const g = await client.getGraph(graphId);
  return g.nodes.find((n) => n.nodeId === node)!.artifacts;
};

test('crowdcompute graph run prints the pipeline example\'s result; sums works while numbers still writes', { timeout: 120_000 }, async () => {
  const t = await setup();
  try {
    t.worker('w1');
    await waitFor(async () => (await t.client.stats()).connected_workers >= 1 || null, { message: 'the worker connects' });
    const out = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => execFile(process.execPath, [BIN, 'graph', 'run', EXAMPLE, '--foreman', t.foreman.url],
      { env: { ...process.env, ...t.env }, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve({ stdout, stderr }))));
    assert.equal(out.stdout.trim(), String(SQUARES_TO_100K));
    assert.match(out.stderr, /numbers\s+completed, 100 artifacts/);
    assert.match(out.stderr, /sums\s+completed, 20 artifacts/);

    // Slowed down, the overlap shows in the timestamps: sums starts, and writes, before numbers ends.
    const g = await t.client.submitGraph(slowPipeline(15, 0));
    assert.equal(await g.result(), SQUARES_TO_100K);
    const info = await t.client.getGraph(g.jobId);
    const node = (id: string) => info.nodes.find((n) => n.nodeId === id)!;
    const numbersDone = Date.parse(node('numbers').completedAt!);
    assert.ok(Date.parse(node('sums').startedAt!) < numbersDone, 'sums started before numbers completed');
    const sumsArts = await t.client.getArtifacts(node('sums').taskId);
    assert.ok(Date.parse(sumsArts.artifacts[0].createdAt) < numbersDone, 'sums wrote its first artifact before numbers completed');
    assert.deepEqual(Object.keys(await g.results()), ['numbers', 'sums', 'total']);

    // Over REST, in snake_case as FlowKit names the fields; a bad graph is refused naming its nodes.
    const rest = (body: unknown) => fetch(`${t.foreman.url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${localKey(t.foreman.url)}` }, body: JSON.stringify(body) });
    const created = await rest({ kind: 'graph', name: 'rest graph', nodes: [
      { id: 'numbers', type: 'pipeline.numbers', input: { from: 1, to: 10, batchSize: 5 } },
      { id: 'sums', type: 'pipeline.sums', input_adapter: 'pull.from_artifacts.rechunk:size', input_args: { from_nodes: ['numbers'], size: 100, meta_list_key: 'items', eof_on_task_done: false } },
    ] });
    assert.equal(created.status, 201);
    const jobId = (await created.json()).id;
    await waitFor(async () => (await t.client.getJob(jobId)).status === 'completed' || null, { message: 'the REST graph completes' });
    const restGraph = await (await fetch(`${t.foreman.url}/api/jobs/${jobId}/graph`, { headers: { authorization: `Bearer ${localKey(t.foreman.url)}` } })).json();
    assert.deepEqual(restGraph.nodes.map((n: { node_id: string; status: string; input_adapter: string | null }) => [n.node_id, n.status, n.input_adapter]),
      [['numbers', 'completed', null], ['sums', 'completed', 'pull.from_artifacts.rechunk:size']]);
    const sumsArtifacts = await t.client.getArtifacts(restGraph.nodes[1].task_id);
    assert.deepEqual(sumsArtifacts.artifacts.map((a) => a.data), [{ sum: 385, count: 10 }], 'the squares of 1..10, re-chunked into one batch, summed');
    const cycle = await rest({ kind: 'graph', nodes: [{ id: 'a', type: 't', depends_on: ['b'] }, { id: 'b', type: 't', depends_on: ['a'] }] });
    assert.equal(cycle.status, 400);
    assert.match((await cycle.json()).message, /"a", "b" depend on one another in a cycle/);
  } finally {
    await t.close();
  }
});

for (const store of ['sqlite', 'postgres'] as const) {
  const pg = store === 'postgres' ? pgUrl : null;
  test(`a graph cancelled mid-run stops every node, whose handlers see the coordinator; a permanent failure fails the graph without retry (unless its node is optional), a transient one retries (${store})`,
    { skip: store === 'postgres' && !pg ? 'no PostgreSQL (CROWDCOMPUTE_TEST_POSTGRES)' : false, timeout: 120_000 }, async () => {
  const schema = `cc_graph_cancel_${process.pid}`;
  const t = await setup(pg ? `${pg}?schema=${schema}` : undefined);
  try {
    t.worker('w1');
    const g = await t.client.submitGraph(slowPipeline(50, 50));
    await waitFor(async () => (await artifactsOf(t.client, g.jobId, 'sums')) >= 1 || null, { timeoutMs: 30_000, message: 'sums is under way' });
    await g.cancel();
    const o = await g.outcome();
    assert.equal(o.state, 'cancelled');
    const info = await t.client.getGraph(g.jobId);
    assert.deepEqual(info.nodes.map((n) => n.status), ['cancelled', 'cancelled', 'cancelled']);
    const stops = await waitFor(() => {
      const text = existsSync(t.env.CC_STOP_LOG) ? readFileSync(t.env.CC_STOP_LOG, 'utf8') : '';
      return text.includes('numbers') && text.includes('sums') ? text : null;
    }, { message: 'the running handlers report why they stopped' });
    assert.match(stops, /numbers coordinator/);
    assert.match(stops, /sums coordinator/);

    // A node that fails for good fails the graph, and what waits after it is cancelled.
    const broken = await t.client.submitGraph({ nodes: [
      { id: 'a', type: 'pipeline.broken', input: { permanent: true }, maxAttempts: 3 },
      { id: 'b', type: 'pipeline.total', inputAdapter: 'pull.from_artifacts', inputArgs: { fromNodes: ['a'], eofOnTaskDone: false } },
    ] });
    await assert.rejects(broken.result(), /failed/);
    const bi = await t.client.getGraph(broken.jobId);
    assert.equal(bi.status, 'failed');
    assert.deepEqual(bi.nodes.map((n) => [n.nodeId, n.status, n.attempt]), [['a', 'failed', 1], ['b', 'cancelled', 0]]);
    assert.equal((bi.nodes[0].error as { code?: string }).code, 'unreadable');
    // An optional node may fail: the nodes after it go on, and the graph completes.
    const lenient = await t.client.submitGraph({ nodes: [
      { id: 'a', type: 'pipeline.broken', input: { permanent: true }, optional: true },
      { id: 'b', type: 'pipeline.total', inputAdapter: 'pull.from_artifacts', inputArgs: { fromNodes: ['a'], eofOnTaskDone: false } },
    ] });
    assert.equal(await lenient.result(), 0, 'b ran without what a did not write');
    const li = await t.client.getGraph(lenient.jobId);
    assert.equal(li.status, 'completed');
    assert.deepEqual(li.nodes.map((n) => n.status), ['failed', 'completed']);
    // A transient failure is retried (and fails for good once the attempts are spent).
    const flaky = await t.client.submitGraph({ nodes: [{ id: 'a', type: 'pipeline.broken', input: { permanent: false }, maxAttempts: 2 }] });
    await assert.rejects(flaky.result());
    assert.equal((await t.client.getGraph(flaky.jobId)).nodes[0].attempt, 2);
  } finally {
    await t.close();
    if (pg) await dropSchema(pg, schema);
  }
  });
}

for (const store of ['sqlite', 'postgres'] as const) {
  const pg = store === 'postgres' ? pgUrl : null;
  test(`workers SIGKILLed in the middle of numbers and of sums, and the foreman SIGKILLed mid-graph: exact result, no batch redone but the one in flight, no artifact twice (${store})`,
    { skip: store === 'postgres' && !pg ? 'no PostgreSQL (CROWDCOMPUTE_TEST_POSTGRES)' : false, timeout: 170_000 }, async () => {
      const schema = `cc_graph_${process.pid}`;
      const t = await setup(pg ? `${pg}?schema=${schema}` : undefined);
      try {
        const first = t.worker('first');
        const g = await t.client.submitGraph(slowPipeline(40, 120));
        // In the middle of numbers (sums is running too: it streams).
        await waitFor(async () => (await artifactsOf(t.client, g.jobId, 'numbers')) >= 25 || null, { timeoutMs: 60_000, message: 'numbers a quarter done' });
        first.kill('SIGKILL');
        await first.exited;
        const second = t.worker('second');
        // The foreman, while the second worker runs both nodes.
        await waitFor(async () => (await artifactsOf(t.client, g.jobId, 'numbers')) >= 55 || null, { timeoutMs: 60_000, message: 'numbers past half' });
        await t.restartForeman();
        // In the middle of sums.
        await waitFor(async () => (await artifactsOf(t.client, g.jobId, 'sums')) >= 13 || null, { timeoutMs: 90_000, message: 'sums past half' })
          .catch(async (err: Error) => {
            throw new Error(`${err.message}\n${JSON.stringify(await t.client.getGraph(g.jobId), null, 1)}\nforeman: ${t.foreman.output().slice(-3000)}\nworker: ${second.output().slice(-3000)}`);
          });
        second.kill('SIGKILL');
        await second.exited;
        t.worker('third');
        assert.equal(await g.result(), SQUARES_TO_100K, 'the result is exact');

        const info = await t.client.getGraph(g.jobId);
        const node = (id: string) => info.nodes.find((n) => n.nodeId === id)!;
        assert.equal(node('numbers').artifacts, 100, 'numbers: each artifact once');
        assert.equal(node('sums').artifacts, 20, 'sums: each artifact once');
        const sums = await t.client.getArtifacts(node('sums').taskId);
        assert.equal(sums.artifacts.reduce((s, a) => s + (a.data as { sum: number }).sum, 0), SQUARES_TO_100K, 'the sums add up');
        assert.deepEqual(sums.artifacts.map((a) => a.batchUid), Array.from({ length: 20 }, (_, i) => `rechunk/${i * 5_000}`));
        assert.ok(node('numbers').attempt >= 2 && node('sums').attempt >= 2, `both nodes were resumed (attempts ${node('numbers').attempt}, ${node('sums').attempt})`);
        const runs = executions(t.env.CC_EXEC_LOG);
        // Each worker killed may leave each node's batch in flight to be done again; nothing before it.
        for (const n of ['numbers', 'sums', 'total']) {
          const r = runs.get(n) ?? { runs: 0, again: [] };
          assert.ok(r.again.length <= 2, `${n}: batches done twice: ${r.again.join(', ')}`);
        }
        assert.ok((runs.get('numbers')?.runs ?? 0) <= 102, `numbers processed ${runs.get('numbers')?.runs} batches for 100`);
        assert.ok((runs.get('sums')?.runs ?? 0) <= 22, `sums processed ${runs.get('sums')?.runs} batches for 20`);
      } finally {
        await t.close();
        if (pg) await dropSchema(pg, schema);
      }
    });
}
