/**
 * The fuzz suite: no message or request a peer sends can stall the foreman. Hostile peers
 * with valid credentials (a client on the WebSocket, a worker after its signed hello, a worker
 * answering tasks it really holds, a client of the REST API) send valid messages of the
 * protocol's schemas broken in every way fuzz-frames.ts knows; after every few cases and at
 * the end, /health must say healthy and a known-good job must complete on a real worker with
 * the right results. On SQLite and on PostgreSQL.
 *
 * Seeded: the seed is printed; CC_FUZZ_SEED=<seed> runs the same cases again, CC_FUZZ_RUNS
 * sets the cases per target, CC_FUZZ_SKIP=<mutation>,… leaves mutations out (to look past one
 * failure that hides the others), CC_FUZZ_VERBOSE=1 prints every case as it is sent, and
 * CC_FUZZ_ROOM=<chars> shows that much of each case (240 by default).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';
import { MUTATIONS } from '../support/fuzz-frames.ts';
import { FuzzRig } from '../support/fuzz-rig.ts';
import { describeFindings, runTarget, Stall, type Finding, type FuzzTarget, type TargetRun } from '../support/fuzz-runner.ts';
import { clientTarget, restTarget, resultTarget, workerTarget } from '../support/fuzz-targets.ts';

const seed = process.env.CC_FUZZ_SEED ? Number(process.env.CC_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const runs = Number(process.env.CC_FUZZ_RUNS ?? 40);
const skip = (process.env.CC_FUZZ_SKIP ?? '').split(',').map((s) => s.trim()).filter(Boolean);
/** The foreman is checked after this many cases of a target, and after its last. */
const CHECK_EVERY = 20;

assert.ok(Number.isInteger(seed), `CC_FUZZ_SEED must be an integer, not ${process.env.CC_FUZZ_SEED}`);
assert.ok(Number.isInteger(runs) && runs > 0, `CC_FUZZ_RUNS must be a positive integer, not ${process.env.CC_FUZZ_RUNS}`);
for (const m of skip) assert.ok([...MUTATIONS, 'batch'].includes(m), `CC_FUZZ_SKIP: no mutation is called ${m}; there are ${[...MUTATIONS, 'batch'].join(', ')}`);
console.log(`fuzz: seed ${seed} (CC_FUZZ_SEED=${seed} runs the same cases), ${runs} cases per target${skip.length ? `, without ${skip.join(', ')}` : ''}`);

const pgUrl = await testPostgresUrl();

/** The hostile peers, in order: those whose checks need results recorded come before the REST API, which may set rate limits. */
const TARGETS: ((rig: FuzzRig, skip: readonly string[]) => FuzzTarget<any>)[] = [clientTarget, workerTarget, resultTarget, restTarget];

for (const store of ['sqlite', 'postgres'] as const) {
  test(`no message or request stalls the foreman (${store})`, {
    skip: store === 'postgres' && !pgUrl ? 'no PostgreSQL (CROWDCOMPUTE_TEST_POSTGRES)' : false, timeout: 170_000,
  }, async (t: TestContext) => {
    t.diagnostic(`seed ${seed}: CC_FUZZ_SEED=${seed} runs the same cases`);
    const pg = store === 'postgres' ? pgUrl : null;
    let rig = await FuzzRig.start(pg);
    const findings: Finding[] = [];
    const stalls: string[] = [];
    let stalled = 0;
    try {
      await rig.probe('before fuzzing');
      for (const [n, makeTarget] of TARGETS.entries()) {
        const target = makeTarget(rig, skip);
        const started = Date.now();
        let run: TargetRun;
        try {
          // Each target its own seed, so leaving one out changes nothing for the others.
          run = await runTarget(target, { seed: seed + n, runs, checkEvery: CHECK_EVERY, check: (when) => rig.probe(when) });
        } catch (err) {
          if (!(err instanceof Stall)) throw err;
          run = err.run;
          stalls.push(err.message);
        }
        const line = `${target.name}: ${run.cases} cases (${Object.entries(run.mutations).map(([m, k]) => `${m} ${k}`).join(', ')}) in ${Date.now() - started} ms, ${run.findings.length} findings${stalls.length > stalled ? ', then the foreman stalled' : ''}`;
        t.diagnostic(line);
        console.log(`fuzz (${store}): ${line}`);
        findings.push(...run.findings);
        if (stalls.length > stalled) {
          // A stalled foreman judges nothing more: the next target gets a new one.
          stalled = stalls.length;
          await rig.stop();
          rig = await FuzzRig.start(pg);
        }
      }
      t.diagnostic(`${rig.probes} known-good jobs completed on the last foreman`);
      const report = [...stalls, ...(findings.length ? [`what the foreman answered that it should not have:\n${describeFindings(findings, seed)}`] : [])];
      assert.equal(report.length, 0, report.join('\n\n'));
    } finally {
      await rig.stop();
    }
  });
}
