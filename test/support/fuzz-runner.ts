/**
 * Runs one fuzz target's cases against a foreman, in order, and checks now and then (and at
 * the end) that the foreman still works. Cases come from fast-check, seeded, so a run is
 * reproduced by its seed; nothing is shrunk, since a foreman that a case broke stays broken.
 */
import fc from 'fast-check';
import type { Frame, Mutation } from './fuzz-frames.ts';

/** What a case showed: the foreman answered, but not as it should have. */
export interface Finding {
  target: string;
  index: number;
  frame: Frame;
  problem: string;
}

/** The foreman stopped answering after a case (or failed a check): nothing sent after it can be judged. */
export class Stall extends Error {
  /** The run up to the stall. */
  readonly run: TargetRun;

  constructor(message: string, run: TargetRun) {
    super(message);
    this.run = run;
  }
}

/** Peers of one kind (a client, a worker, the REST API) and the cases they send. */
export interface FuzzTarget<C> {
  readonly name: string;
  readonly cases: fc.Arbitrary<C>;
  /** Connect (again, after a check of the foreman). */
  open(): Promise<void>;
  /**
   * Send case `index` (telling `sending` its frame first) and wait until the foreman has
   * answered it: the problems its answers showed. Throws when the foreman no longer answers.
   */
  send(c: C, index: number, sending: (frame: Frame) => void): Promise<string[]>;
  /** Disconnect (a hostile worker could hold work that it never does). */
  close(): Promise<void>;
}

/** How one target's run went. */
export interface TargetRun {
  cases: number;
  findings: Finding[];
  /** Cases per mutation. */
  mutations: Partial<Record<Mutation, number>>;
}

/** A frame in a line: its start and end, with its size, and control characters escaped. */
export function preview(frame: Frame, room = Number(process.env.CC_FUZZ_ROOM ?? 240)): string {
  const bytes = Buffer.byteLength(frame.data);
  const text = typeof frame.data === 'string' ? frame.data : frame.data.toString('utf8');
  const shown = text.length <= room ? text : `${text.slice(0, room - 60)} …[${bytes} bytes in all]… ${text.slice(-50)}`;
  // Invisible and unprintable characters (controls, format marks, lone surrogates) as escapes.
  return shown.replace(/\p{Cc}|\p{Cf}|\p{Cs}|\p{Zl}|\p{Zp}/gu, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Run `runs` cases of `target` generated from `seed`. `check` (the foreman still works) runs
 * after every `checkEvery` cases and after the last, with the target's peers disconnected.
 * A stall or a failed check ends the run with an error naming the cases since the last good
 * check; other findings are collected and returned.
 */
export async function runTarget<C>(target: FuzzTarget<C>, options: { seed: number; runs: number; checkEvery: number; check: (when: string) => Promise<void> }): Promise<TargetRun> {
  const cases = fc.sample(target.cases, { seed: options.seed, numRuns: options.runs });
  const run: TargetRun = { cases: 0, findings: [], mutations: {} };
  let sinceCheck: string[] = [];
  function fail(why: string): never {
    throw new Stall(`${target.name} (seed ${options.seed}): ${why}\ncases sent since the last good check:\n${sinceCheck.join('\n')}`, run);
  }
  await target.open();
  try {
    for (let i = 0; i < cases.length; i++) {
      let frame: Frame | null = null;
      let problems: string[];
      try {
        problems = await target.send(cases[i], i, (f) => {
          frame = f;
          sinceCheck.push(`  case ${i}: ${f.detail}\n    ${preview(f)}`);
          if (process.env.CC_FUZZ_VERBOSE) console.log(`${target.name}, case ${i}: ${f.detail}\n    ${preview(f)}`);
        });
      } catch (err) {
        fail(`case ${i}: ${(err as Error).message}`);
      }
      if (frame === null) throw new Error(`${target.name}: case ${i} was never sent`);
      const sent: Frame = frame;
      run.cases++;
      run.mutations[sent.mutation] = (run.mutations[sent.mutation] ?? 0) + 1;
      for (const problem of problems) run.findings.push({ target: target.name, index: i, frame: sent, problem });
      if ((i + 1) % options.checkEvery === 0 || i === cases.length - 1) {
        await target.close();
        try {
          await options.check(`${target.name}, after case ${i}`);
        } catch (err) {
          fail((err as Error).message);
        }
        sinceCheck = [];
        if (i < cases.length - 1) await target.open();
      }
    }
  } catch (err) {
    await target.close().catch(() => {});
    throw err;
  }
  return run;
}

/** Findings in words, one paragraph each, duplicates (same problem) folded. */
export function describeFindings(findings: readonly Finding[], seed: number): string {
  const byProblem = new Map<string, Finding[]>();
  for (const f of findings) {
    const key = `${f.target}: ${f.problem.replace(/\b[0-9a-f]{8}-[0-9a-f-]{27}\b/g, '<id>').replace(/case-\d+/g, 'case-N').slice(0, 160)}`;
    byProblem.set(key, [...(byProblem.get(key) ?? []), f]);
  }
  return [...byProblem.values()].map((fs) => {
    const f = fs[0];
    return `${f.target}, case ${f.index} (seed ${seed}${fs.length > 1 ? `; ${fs.length - 1} more like it` : ''}): ${f.problem}\n  ${f.frame.detail}\n  ${preview(f.frame)}`;
  }).join('\n');
}
