import { CrowdComputeError } from '../protocol/index.ts';

/**
 * The source text of a function to ship, as one expression the sandbox can evaluate.
 * The function must be self-contained: it sees its argument and JavaScript's built-ins,
 * nothing from the scope it was written in (closures do not travel).
 */
export function functionSource(fn: ((...args: any[]) => unknown) | string): string {
  if (typeof fn === 'string') return fn.trim();
  if (typeof fn !== 'function') throw new CrowdComputeError('CC_ERR_INVALID_JOB', 'map() needs a function or its source text');
  const src = Function.prototype.toString.call(fn).trim();
  if (/\{\s*\[native code\]\s*\}$/.test(src)) {
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `cannot ship ${fn.name || 'this function'}: it is native or bound; write a self-contained function`);
  }
  if (/^class\b/.test(src)) throw new CrowdComputeError('CC_ERR_CODE_COMPILE', 'cannot ship a class; ship a function');
  // Method shorthand (`square(x) { ... }`, `async square(x) { ... }`) is not an expression on its
  // own; arrows, parenthesised params and `function` are.
  const isExpression = /^(async\s+)?function\b/.test(src) || /^(async\s*)?\(/.test(src) || /^(async\s+)?[\p{L}\p{N}_$]+\s*=>/u.test(src);
  if (!isExpression) {
    const m = /^(async\s+)?(.*)$/s.exec(src)!;
    return `${m[1] ? 'async ' : ''}function ${m[2]}`;
  }
  return src;
}
