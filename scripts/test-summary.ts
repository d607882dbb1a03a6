/**
 * The closing line of the test command: every test of both suites counted, from the
 * TypeScript runner's summary (its `ℹ tests N` lines) and pytest's JUnit XML report.
 *
 *   node scripts/test-summary.ts <node-test-output.log> <pytest-junit.xml>
 */
import { existsSync, readFileSync } from 'node:fs';

const [tsLog, pyXml] = process.argv.slice(2);

function nodeCounts(file: string): Record<string, number> | null {
  if (!existsSync(file)) return null;
  const text = readFileSync(file, 'utf8');
  const counts: Record<string, number> = {};
  for (const key of ['tests', 'pass', 'fail', 'cancelled', 'skipped']) {
    const all = [...text.matchAll(new RegExp(`^ℹ ${key} (\\d+)$`, 'gm'))];
    if (all.length === 0) return null;
    counts[key] = Number(all[all.length - 1][1]);
  }
  return counts;
}

function pytestCounts(file: string): Record<string, number> | null {
  if (!existsSync(file)) return null;
  const suite = /<testsuite\b([^>]*)>/.exec(readFileSync(file, 'utf8'));
  if (!suite) return null;
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite[1])?.[1] ?? 0);
  const tests = attr('tests');
  const fail = attr('failures') + attr('errors');
  const skipped = attr('skipped');
  return { tests, pass: tests - fail - skipped, fail, cancelled: 0, skipped };
}

const ts = nodeCounts(tsLog);
const py = pytestCounts(pyXml);
const part = (name: string, c: Record<string, number> | null) => c
  ? `${name} ${c.tests} (${c.pass} passed, ${c.fail + c.cancelled} failed, ${c.skipped} skipped)`
  : `${name}: no report (the suite did not run to its end)`;
const total = (ts?.tests ?? 0) + (py?.tests ?? 0);
const failed = (ts ? ts.fail + ts.cancelled : 0) + (py?.fail ?? 0);
const ok = ts !== null && py !== null && failed === 0;
console.log(`tests: ${total} in all, ${failed} failed: ${part('TypeScript', ts)}, ${part('Python', py)}${ok ? '' : ' — FAILED'}`);
process.exit(ok ? 0 : 1);
