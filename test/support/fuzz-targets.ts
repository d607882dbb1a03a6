/**
 * The fuzz suite's hostile peers, one target each: a client on the WebSocket (API key in the
 * upgrade), a worker on the WebSocket (after a signed hello), a worker answering tasks it was
 * really given with broken results, and a client of the REST API. Each sends the cases of the
 * protocol's own schemas (fuzz-frames.ts), waits until the foreman has answered, and reports
 * what no hostile peer should ever get: an internal error, a store error from a healthy
 * store, a REST 5xx, an answer that is not JSON, or a connection closed for no fair reason.
 */
import fc from 'fast-check';
import { z } from 'zod';
import {
  AppendTasksSchema, CancelJobSchema, FailedRetryBodySchema, HeartbeatSchema, HelloSchema, JoinLinkCreateSchema, KeyWebhookBodySchema, PROTOCOL_VERSION, PullArtifactsSchema, RateLimitBodySchema,
  ReleaseTasksSchema, RestAppendPartSchema, RestJobSpecSchema, SubmitJobSchema, SubscribeJobSchema, TaskProgressSchema, TaskRecordSchema, TaskResultSchema,
  TaskResultsSchema, TaskSubmitBodySchema, WorkerDrainingSchema, WorkerReadySchema,
} from '../../src/protocol/index.ts';
import { signHello } from '../../src/testing/index.ts';
import { frameOf, fuzzCases, overfullBatch, type Frame, type FuzzCase } from './fuzz-frames.ts';
import type { FuzzTarget } from './fuzz-runner.ts';
import { FuzzSocket, type Received } from './fuzz-socket.ts';
import type { FuzzRig } from './fuzz-rig.ts';

/** How long the foreman may take to answer one case: generous, for a loaded 2-core machine. */
const ANSWER_DEADLINE_MS = 15_000;

/** Codes no hostile peer should get from a healthy foreman: they say the foreman failed, not the peer. */
const FOREMAN_FAILURES = new Set(['CC_ERR_INTERNAL', 'CC_ERR_STORE_UNAVAILABLE', 'CC_ERR_STORE_FULL']);

/**
 * Fair reasons to close a fuzzing connection: a text frame that is not UTF-8 (1007), a frame
 * far over the limit (1009), flooding (1008), a protocol version it does not speak (4002), a
 * hello without a valid proof (4401), a newer connection of the same worker (4001).
 */
const FAIR_CLOSES = new Set([1007, 1008, 1009, 4001, 4002, 4401]);

/** What the foreman's answers on a socket show so far (and forget them). */
function problemsOn(sock: FuzzSocket): string[] {
  const problems = [
    ...sock.errors.filter((e) => FOREMAN_FAILURES.has(e.code ?? '')).map((e) => `answered ${e.code}${e.requestId ? ` (to ${e.requestId})` : ''}: ${String(e.message).slice(0, 300)}`),
    ...sock.unreadable.map((t) => `sent a frame that is not JSON: ${t}`),
  ];
  sock.errors.length = 0;
  sock.unreadable.length = 0;
  return problems;
}

function closeProblem(sock: FuzzSocket): string[] {
  return sock.closeCode !== null && !FAIR_CLOSES.has(sock.closeCode) ? [`closed the connection with ${sock.closeCode} ${sock.closeReason}`] : [];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Replace the values of `keys` wherever they are in `value` (a copy). */
function withKeys(value: unknown, keys: Record<string, (old: unknown) => unknown>): unknown {
  if (Array.isArray(value)) return value.map((v) => withKeys(v, keys));
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, Object.hasOwn(keys, k) ? keys[k](v) : withKeys(v, keys)]));
}

const caseValues = (c: FuzzCase): unknown[] => (c.kind === 'one' ? [c.recipe.value] : c.recipes.map((r) => r.value));

/**
 * Open jobs the hostile peers append to, subscribe to, cancel and name in results: a job of
 * named tasks (with queued tasks no worker runs) and a map job. Made again at every open, as
 * cases cancel and seal them.
 */
async function openPool(rig: FuzzRig): Promise<{ jobIds: string[]; taskIds: string[] }> {
  const submit = async (body: unknown) => {
    const res = await rig.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 201) throw new Error(`the fuzz pool's job was refused: ${res.status} ${await res.text()}`);
    return (await res.json() as { id: string }).id;
  };
  const tasks = await submit({ kind: 'tasks', open: true, tasks: [{ type: 'fuzz.pool.task', input: 1 }, { type: 'fuzz.pool.task', input: 2 }] });
  const map = await submit({ kind: 'map', open: true, code: '(x) => x', args: [1, 2], chunk_size: 2 });
  return { jobIds: [tasks, map], taskIds: [`${tasks}.0`, `${tasks}.1`] };
}

/** A client with a valid API key on the WebSocket: submit_job, append_tasks, subscribe_job, cancel_job. */
export function clientTarget(rig: FuzzRig, skip: readonly string[]): FuzzTarget<FuzzCase> {
  const schema = z.union([SubmitJobSchema, AppendTasksSchema, SubscribeJobSchema, CancelJobSchema]);
  let sock: FuzzSocket | null = null;
  let pool = { jobIds: [] as string[], taskIds: [] as string[] };
  const connect = async () => { sock = await FuzzSocket.open(rig.foreman.wsUrl, rig.apiKey); return sock; };
  return {
    name: 'client messages on the WebSocket',
    cases: fuzzCases(schema, { skip }),
    async open() {
      pool = await openPool(rig);
      await connect();
    },
    async send(c, i, sending) {
      const s = sock!.isOpen ? sock! : await connect();
      const frame = i % 25 === 24 ? overfullBatch(10_001) : frameOf(schema, c, (v) => withKeys(v, {
        requestId: (old) => (typeof old === 'string' ? `case-${i}` : old),
        // Real jobs two times in three, so appends and cancels reach a job.
        jobId: (old) => (typeof old === 'string' && i % 3 !== 0 ? pool.jobIds[i % pool.jobIds.length] : old),
      }));
      sending(frame);
      s.send(frame.data, frame.binary);
      // Answered once the barrier, a valid submission, is: sent right behind the case, it is
      // usually committed in the same transaction, and must not pay for what the case did.
      s.send({ type: 'submit_job', requestId: `barrier-${i}`, subscribe: false, job: { kind: 'tasks', name: 'fuzz barrier', tasks: [{ type: 'fuzz.barrier', input: i }] } });
      const barrier = await s.next((m) => m.requestId === `barrier-${i}`, ANSWER_DEADLINE_MS, `answer to case ${i}`);
      const refused = barrier?.type === 'error' ? [`refused a valid submit_job sent right behind it: ${barrier.code}: ${String(barrier.message).slice(0, 200)}`] : [];
      if (barrier?.type === 'error') s.errors.splice(s.errors.indexOf(barrier), 1);
      const problems = [...refused, ...problemsOn(s), ...closeProblem(s)];
      s.received.length = 0;
      return problems;
    },
    async close() {
      await sock?.close();
      sock = null;
    },
  };
}

/**
 * A worker on the WebSocket: after its signed hello, every worker message; hellos (signed
 * most of the time, so they get past the proof) on connections of their own.
 */
export function workerTarget(rig: FuzzRig, skip: readonly string[]): FuzzTarget<FuzzCase> {
  const schema = z.union([HelloSchema, HeartbeatSchema, WorkerReadySchema, TaskResultSchema, TaskResultsSchema, TaskProgressSchema,
    WorkerDrainingSchema, ReleaseTasksSchema, TaskRecordSchema, PullArtifactsSchema]);
  const host = new URL(rig.foreman.wsUrl).host;
  let session: FuzzSocket | null = null;
  let pool = { jobIds: [] as string[], taskIds: [] as string[] };
  const connect = async () => {
    const s = await FuzzSocket.open(rig.foreman.wsUrl, null);
    s.send({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'fuzz-worker', capacity: 4, patterns: ['fuzz.nobody.*'], allowCode: false,
      auth: signHello(rig.workerToken, 'fuzz-worker', host) });
    if (!(await s.next((m) => m.type === 'welcome', ANSWER_DEADLINE_MS, 'welcome'))) throw new Error(`the fuzz worker's hello was refused: ${s.closeCode} ${s.closeReason}`);
    session = s;
    return s;
  };
  return {
    name: 'worker messages on the WebSocket',
    cases: fuzzCases(schema, { skip }),
    async open() {
      pool = await openPool(rig);
      await connect();
    },
    async send(c, i, sending) {
      const hello = caseValues(c).some((v) => isObject(v) && v.type === 'hello');
      // A hello goes on a connection of its own: a second hello on a session is refused before anything is read.
      const s = hello ? await FuzzSocket.open(rig.foreman.wsUrl, null) : session!.isOpen ? session! : await connect();
      const frame = frameOf(schema, c, (v) => {
        const out = withKeys(v, {
          requestId: (old) => (typeof old === 'string' ? `case-${i}` : old),
          // Tasks that exist (queued, not this worker's) two times in three.
          taskId: (old) => (typeof old === 'string' && i % 3 !== 0 ? pool.taskIds[i % pool.taskIds.length] : old),
        });
        if (!isObject(out) || out.type !== 'hello') return out;
        return {
          ...out,
          ...(i % 4 !== 0 ? { protocol: PROTOCOL_VERSION } : {}),
          ...(typeof out.workerId === 'string' && out.workerId !== 'fuzz-probe' && i % 5 !== 0 ? { auth: signHello(rig.workerToken, out.workerId, host) } : {}),
        };
      });
      sending(frame);
      s.send(frame.data, frame.binary);
      s.send({ type: 'pull_artifacts', requestId: `barrier-${i}`, taskId: 'fuzz-no-such-task', attempt: 1, fromNodes: ['a'], afterSeq: 0, limit: 1 });
      await s.next((m) => m.requestId === `barrier-${i}`, ANSWER_DEADLINE_MS, `answer to case ${i}`);
      const problems = [...problemsOn(s), ...closeProblem(s)];
      s.received.length = 0;
      if (hello) await s.close();
      return problems;
    },
    async close() {
      await session?.close();
      session = null;
    },
  };
}

/**
 * A worker that really holds tasks: each case submits a job of one to three tasks, takes them,
 * and answers with the case's task_result or task_results naming them: a poisoned result
 * where it does the most harm. Then it answers them cleanly, and the case is done when the
 * job has ended (its tasks recorded one way or the other) and reads back over REST.
 */
export function resultTarget(rig: FuzzRig, skip: readonly string[]): FuzzTarget<FuzzCase> {
  const schema = z.union([TaskResultsSchema, TaskResultSchema]);
  const host = new URL(rig.foreman.wsUrl).host;
  let sock: FuzzSocket | null = null;
  /** What the foreman said on connections that closed during a case. */
  let earlier: string[] = [];
  /** Tasks the foreman gave this worker (by `taskId#attempt`), and whether they were answered cleanly. */
  const held = new Map<string, { taskId: string; attempt: number; jobId: string; answered: boolean }>();
  const current = async (): Promise<FuzzSocket> => {
    if (sock?.isOpen) return sock;
    if (sock) earlier.push(...problemsOn(sock), ...closeProblem(sock));
    const s = await FuzzSocket.open(rig.foreman.wsUrl, null);
    s.send({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'fuzz-results', capacity: 16, patterns: ['fuzz.result.*'], allowCode: false,
      auth: signHello(rig.workerToken, 'fuzz-results', host) });
    if (!(await s.next((m) => m.type === 'welcome', ANSWER_DEADLINE_MS, 'welcome'))) throw new Error(`the results worker's hello was refused: ${s.closeCode} ${s.closeReason}`);
    sock = s;
    return s;
  };
  const harvest = (s: FuzzSocket) => {
    for (const m of s.received.splice(0)) {
      if (m.type !== 'assign_tasks') continue;
      for (const t of m.tasks as { taskId: string; attempt: number; jobId: string }[]) held.set(`${t.taskId}#${t.attempt}`, { ...t, answered: false });
    }
  };
  const ended = async (jobId: string) => ['completed', 'failed', 'cancelled'].includes((await (await rig.fetch(`/api/jobs/${jobId}`)).json() as { status: string }).status);
  return {
    name: 'results of assigned tasks',
    cases: fuzzCases(schema, { skip }),
    async open() { await current(); },
    async send(c, i, sending) {
      earlier = [];
      const outcomes = caseValues(c).flatMap((v) => (isObject(v) && Array.isArray(v.results) ? v.results : [v]));
      const count = Math.max(1, Math.min(3, outcomes.length));
      const res = await rig.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({
        kind: 'tasks', name: `fuzz case ${i}`, max_attempts: 1, tasks: Array.from({ length: count }, (_, n) => ({ type: 'fuzz.result.work', input: { case: i, n } })),
      }) });
      if (res.status !== 201) throw new Error(`the job for case ${i} was refused: ${res.status} ${await res.text()}`);
      const jobId = (await res.json() as { id: string }).id;
      // The tasks, as the foreman hands them out.
      let deadline = Date.now() + ANSWER_DEADLINE_MS;
      let refs: { taskId: string; attempt: number }[] = [];
      for (;;) {
        const s = await current();
        harvest(s);
        refs = [...held.values()].filter((t) => t.jobId === jobId);
        if (refs.length >= count) break;
        if (Date.now() > deadline) throw new Error(`the tasks of job ${jobId} did not reach their worker within ${ANSWER_DEADLINE_MS} ms`);
        await s.idle(250);
      }
      let n = 0;
      const name = (o: unknown) => {
        if (!isObject(o)) return o;
        const ref = refs[n++ % refs.length];
        // Completed two times in three: a completed outcome's result is what the store keeps.
        return { ...o, ...('taskId' in o ? { taskId: ref.taskId } : {}), ...('attempt' in o ? { attempt: ref.attempt } : {}), ...('status' in o && i % 3 !== 0 ? { status: 'completed' } : {}) };
      };
      const frame = frameOf(schema, c, (v) => (isObject(v) && Array.isArray(v.results) ? { ...v, results: v.results.map(name) } : name(v)));
      sending(frame);
      (await current()).send(frame.data, frame.binary);
      // Then every task of the job answered cleanly (a result already recorded is refused as
      // stale, and acknowledged all the same), until the job has ended.
      deadline = Date.now() + ANSWER_DEADLINE_MS;
      for (;;) {
        const s = await current();
        harvest(s);
        for (const t of held.values()) {
          if (t.jobId !== jobId || t.answered) continue;
          s.send({ type: 'task_result', taskId: t.taskId, attempt: t.attempt, status: 'completed', result: { clean: i } });
          t.answered = true;
        }
        if (await ended(jobId)) break;
        if (Date.now() > deadline) throw new Error(`job ${jobId} had not ended ${ANSWER_DEADLINE_MS} ms after its worker answered every task: results are no longer recorded`);
        await s.idle(100);
      }
      for (const [key, t] of held) if (t.jobId === jobId) held.delete(key);
      const problems = [...earlier, ...(sock ? problemsOn(sock) : [])];
      for (const path of [`/api/jobs/${jobId}/results`, ...refs.map((r) => `/api/tasks/${r.taskId}`)]) {
        const read = await rig.fetch(path);
        const text = await read.text();
        if (read.status !== 200) problems.push(`GET ${path.replace(jobId, '{job}')} answered ${read.status}: ${text.slice(0, 300)}`);
      }
      return problems;
    },
    async close() {
      await sock?.close();
      sock = null;
      held.clear();
    },
  };
}

/** One REST route with a JSON body. */
interface Route { name: string; method: string; path: (i: number) => string; schema: z.ZodType }

/** Ids in paths that are not ids. */
const ODD_IDS = ['..', '%00', '%E2%80%AE', 'x'.repeat(300), '%F0%9F%99%82', '%ED%A0%80', '%C0%AF', '%FF'];

/** Rates as an operator writes them, and some no operator would. */
const RATES = ['5/s', '100/10m', '1/1500ms', '0/s', '1e308/s', '9007199254740993/1ms', '-1/s', '1/0s', '10/1e400ms', '3/s/s', '/s'];

/** A client of the REST API with a valid key: every route that takes a JSON body. */
export function restTarget(rig: FuzzRig, skip: readonly string[]): FuzzTarget<{ route: number; c: FuzzCase }> {
  let pool = { jobIds: [] as string[], taskIds: [] as string[] };
  const jobPath = (i: number, tail: string) => `/api/jobs/${i % 5 === 0 ? ODD_IDS[i % ODD_IDS.length] : pool.jobIds[i % pool.jobIds.length]}${tail}`;
  const routes: Route[] = [
    { name: 'POST /api/jobs', method: 'POST', path: () => '/api/jobs', schema: RestJobSpecSchema },
    { name: 'POST /api/jobs/{id}/tasks', method: 'POST', path: (i) => jobPath(i, '/tasks'), schema: RestAppendPartSchema },
    { name: 'POST /task/submit', method: 'POST', path: () => '/task/submit', schema: TaskSubmitBodySchema },
    { name: 'PUT /api/rate-limits', method: 'PUT', path: () => '/api/rate-limits', schema: RateLimitBodySchema },
    { name: 'POST /api/join-links', method: 'POST', path: () => '/api/join-links', schema: JoinLinkCreateSchema },
    // The rig's own key (a key may set its own webhook), or an id that is not one.
    { name: 'PUT /api/keys/{id}/webhook', method: 'PUT', path: (i) => `/api/keys/${i % 5 === 0 ? ODD_IDS[i % ODD_IDS.length] : rig.apiKey.split('_')[1]}/webhook`, schema: KeyWebhookBodySchema },
    { name: 'POST /api/failed/retry', method: 'POST', path: () => '/api/failed/retry', schema: FailedRetryBodySchema },
  ];
  return {
    name: 'REST bodies',
    cases: fc.oneof(...routes.map((r, route) => fuzzCases(r.schema, { skip }).map((c) => ({ route, c })))),
    async open() { pool = await openPool(rig); },
    async send({ route, c }, i, sending) {
      const r = routes[route];
      const frame: Frame = frameOf(r.schema, c, (v) => withKeys(v, {
        limit: (old) => (typeof old === 'string' && i % 2 === 0 ? RATES[i % RATES.length] : old),
      }));
      const path = r.path(i);
      sending({ ...frame, detail: `${r.method} ${path}: ${frame.detail}` });
      const res = await rig.fetch(path, { method: r.method, headers: { 'content-type': 'application/json' }, body: typeof frame.data === 'string' ? frame.data : new Uint8Array(frame.data), signal: AbortSignal.timeout(ANSWER_DEADLINE_MS) });
      const text = await res.text();
      let body: Received | null = null;
      try { body = JSON.parse(text) as Received; } catch { /* judged below */ }
      if (res.status >= 500) return [`${r.method} ${r.path(i).replace(/[^/]{36}/, '{id}')} answered ${res.status} ${body?.code ?? ''}: ${String(body?.message ?? text).slice(0, 300)}`];
      if (res.status >= 400 && (typeof body?.code !== 'string' || typeof body?.message !== 'string')) return [`${r.method} answered ${res.status} without an error body: ${text.slice(0, 200)}`];
      return [];
    },
    async close() {},
  };
}
