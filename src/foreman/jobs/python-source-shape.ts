/**
 * What the foreman can say of a Python function's source without a Python interpreter: that it
 * is one top-level `def` and nothing else at the top level. A function that does not parse, or
 * uses names from outside itself, is refused by the full check (python-code-check.ts), which
 * runs Python; this one answers at once, and keeps what is plainly not a function out of it.
 */
import { CrowdComputeError } from '../../protocol/index.ts';

/** At most this much source: a function, not a program. */
const MAX_SOURCE = 1024 * 1024;

/** Throw CC_ERR_CODE_COMPILE unless `source` is one top-level `def` (decorators and other statements refused). */
export function checkPythonSourceShape(source: string): void {
  if (source.length > MAX_SOURCE) throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `the Python function's source is ${source.length} characters; at most ${MAX_SOURCE} are accepted`);
  const top = source.split(/\r?\n/).map((line, i) => ({ line, n: i + 1 }))
    .filter(({ line }) => line.trim() !== '' && !line.trimStart().startsWith('#') && !/^\s/.test(line));
  const defs = top.filter(({ line }) => /^(async\s+)?def\s/.test(line));
  const first = top[0];
  if (!first || defs.length === 0) {
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', 'a Python map function is one top-level `def name(arg): ...`; the source has no `def` at its top level');
  }
  if (/^async\s/.test(defs[0].line)) {
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `line ${defs[0].n}: a Python map function is a plain \`def\`, not \`async def\``);
  }
  const other = top.find(({ line }) => !/^def\s/.test(line) && !/^[)\]}]/.test(line));
  if (defs.length > 1 || other) {
    const at = other ?? defs[1];
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `line ${at.n}: a Python map function is exactly one top-level \`def\`, with nothing else at the top level (imports go inside the function): ${at.line.trim().slice(0, 80)}`);
  }
}
