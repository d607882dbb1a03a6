/**
 * A foreman for the fuzz suite, on SQLite or on a fresh PostgreSQL schema, with authentication
 * on: a real worker and an SDK client (the machine's local admin key and worker token) that
 * prove the foreman still works, and a second API key for the hostile peers, who are another
 * owner, as a hostile client with a valid key would be.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { HealthViewSchema } from '../../src/protocol/index.ts';
import { matchesPattern } from '../../src/core/pattern.ts';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, type TestForeman } from '../../src/testing/index.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

/** The task type of the known-good job, which only the rig's real worker runs. */
export const PROBE_TYPE = 'fuzz.probe.square';
/** How long the known-good job may take: generous, for a loaded 2-core machine. */
const PROBE_DEADLINE_MS = 20_000;

/** A foreman under fuzzing, its real worker and client, and the hostile peers' credentials. */
export class FuzzRig {
  readonly foreman: TestForeman;
  /** The API key the hostile peers use (every scope, so every route is reached). */
  readonly apiKey: string;
  /** The worker token (for any worker id) that the hostile workers sign their hellos with. */
  readonly workerToken: string;
  /** Known-good jobs that completed with the right results. */
  probes = 0;
  private readonly worker: Worker;
  private readonly client: Client;
  private readonly dropSchema: (() => Promise<void>) | null;

  private constructor(foreman: TestForeman, apiKey: string, worker: Worker, client: Client, dropSchema: (() => Promise<void>) | null) {
    this.foreman = foreman;
    this.apiKey = apiKey;
    this.workerToken = foreman.credentials!.workerToken;
    this.worker = worker;
    this.client = client;
    this.dropSchema = dropSchema;
  }

  /** Start a foreman on SQLite (`pgUrl` null) or on a fresh schema of that PostgreSQL. */
  static async start(pgUrl: string | null): Promise<FuzzRig> {
    const schema = `cc_fuzz_${process.pid}`;
    const dropSchema = pgUrl ? async () => {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      try { await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`); } finally { await c.end(); }
    } : null;
    await dropSchema?.();
    const foreman = await startTestForeman({
      ...(pgUrl ? { database: `${pgUrl}?schema=${schema}` } : {}),
      heartbeatIntervalMs: 500, leaseTtlMs: 5_000, maxAuthFailuresPerMinute: 100_000,
    });
    try {
      const { stdout } = await run(process.execPath, [BIN, 'key', 'create', '--scopes', 'read,submit,submit:code,admin', '--name', 'fuzzer', '--database', foreman.databaseUrl],
        { env: process.env, timeout: 60_000 });
      const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'fuzz-probe', logLevel: 'silent', maxConcurrentTasks: 4 });
      worker.handle(PROBE_TYPE, async (t) => {
        const { n, s } = t.input as { n: number; s: string };
        return { square: n * n, s };
      });
      await worker.start();
      return new FuzzRig(foreman, stdout.trim(), worker, new Client({ url: foreman.url }), dropSchema);
    } catch (err) {
      await foreman.cleanup();
      await dropSchema?.();
      throw err;
    }
  }

  /**
   * The foreman still works: /health says healthy, and a known-good job of named tasks,
   * submitted through the SDK, completes on the real worker with the right results.
   * Rate limits a fuzzed request set on the probe's task type are an operator's choice, not a
   * stall: they are removed first.
   */
  async probe(when: string): Promise<void> {
    const res = await this.foreman.fetch('/health');
    const health = HealthViewSchema.parse(await res.json());
    assert.equal(res.status, 200, `${when}: GET /health answers ${res.status} (${JSON.stringify(health)})`);
    assert.equal(health.status, 'healthy', `${when}: the foreman says it is ${health.status}: ${health.reason ?? ''}`);
    for (const limit of await this.client.rateLimits()) {
      if (matchesPattern(limit.pattern, PROBE_TYPE)) await this.client.removeRateLimit(limit.pattern);
    }
    const inputs = [1, 2, 3].map((n) => ({ n: n + this.probes * 3, s: `probe ${this.probes} é🙂` }));
    const job = await this.client.submitMany(inputs.map((input) => ({ type: PROBE_TYPE, input })), { name: 'fuzz probe' });
    const results = await within(job.result(), PROBE_DEADLINE_MS, `${when}: the known-good job ${job.id} completes`);
    assert.deepEqual(results, inputs.map(({ n, s }) => ({ square: n * n, s })), `${when}: the known-good job's results`);
    this.probes++;
  }

  /** `fetch` on the foreman with the hostile peers' API key. */
  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.foreman.url}${path}`, { ...init, headers: { authorization: `Bearer ${this.apiKey}`, ...(init.headers as Record<string, string> | undefined) } });
  }

  /** Stop everything and drop the PostgreSQL schema. */
  async stop(): Promise<void> {
    await this.client.close();
    await this.worker.stop();
    await this.foreman.cleanup();
    await this.dropSchema?.();
  }
}

/** `promise`, or a failure naming `what` if it has not settled by the deadline. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
