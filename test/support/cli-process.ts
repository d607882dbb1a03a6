/**
 * The `crowdcompute` binary run as a user runs it, for the CLI tests: its exit code and both
 * outputs, a failure returned rather than thrown.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The binary users start. */
export const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

/** What one command did. */
export interface Ran { code: number; stdout: string; stderr: string }

/** Run the binary with `args` in `cwd` (default: this process's) and exactly the environment `env`. */
export async function runBin(args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<Ran> {
  try {
    const r = await run(process.execPath, [bin, ...args], { env: options.env, cwd: options.cwd, timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The command failed with exit code 1 and one line, `crowdcompute: <message>`, that matches; that line. */
export function oneLineFailure(r: Ran, args: string[], message: RegExp): string {
  assert.equal(r.code, 1, `exit code of crowdcompute ${args.join(' ')}; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0], /^crowdcompute: /);
  assert.match(lines[0], message);
  return lines[0];
}
