/**
 * Checks on shipped source before it is accepted: it must be one function expression, and it
 * must be self-contained. Both are decided by parsing (acorn) and scope analysis
 * (eslint-scope), never by running it: nothing shipped runs on the foreman.
 */
import { runInNewContext } from 'node:vm';
import * as acorn from 'acorn';
import { analyze } from 'eslint-scope';
import { CrowdComputeError } from '../../protocol/index.ts';

/**
 * The names a shipped function may use without defining them: the globals of a fresh
 * JavaScript context (Math, JSON, Array, Promise, …), which is what the sandbox gives it.
 * Node's own (process, require, Buffer, fetch) are not among them. WebAssembly is removed in
 * the sandbox, so it is not allowed either.
 */
const SANDBOX_GLOBALS: ReadonlySet<string> = new Set(
  (runInNewContext('Object.getOwnPropertyNames(globalThis)') as string[]).filter((n) => n !== 'WebAssembly'),
);

/**
 * Check that shipped source is one function expression, without running it: anything but a
 * single function or arrow function (a call, an object, a statement) is refused, so nothing in
 * it can run on the foreman or at load time on a worker. Then check that it is self-contained:
 * a function that reads variables from outside itself (a closure over the caller's variables,
 * an imported helper) would fail on every worker with a ReferenceError, argument by argument;
 * it is refused here with the names of those variables.
 */
export function checkFunctionSource(code: string): void {
  let node: acorn.Expression;
  try {
    node = acorn.parseExpressionAt(code, 0, { ecmaVersion: 'latest', preserveParens: true });
    // Only comments and white space may follow the function.
    if (acorn.parse(code.slice(node.end), { ecmaVersion: 'latest' }).body.length > 0) throw new SyntaxError('more code follows the function');
    while (node.type === 'ParenthesizedExpression') node = node.expression;
  } catch (err) {
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `the shipped function does not compile: ${(err as Error).message}`);
  }
  if (node.type !== 'FunctionExpression' && node.type !== 'ArrowFunctionExpression') {
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `the shipped code must be one function expression (function (x) { … } or (x) => …), not ${node.type === 'Identifier' ? `the name "${node.name}"` : `a ${node.type}`}`);
  }
  if (node.type === 'FunctionExpression' && node.generator) {
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', 'the shipped function is a generator; ship a function that returns its result');
  }
  const outside = freeVariables(code.slice(node.start, node.end));
  if (outside.length > 0) {
    const names = outside.slice(0, 10).map((n) => `"${n}"`).join(', ') + (outside.length > 10 ? ` and ${outside.length - 10} more` : '');
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE',
      `the shipped function uses ${outside.length === 1 ? 'a variable' : 'variables'} from outside itself: ${names}. `
      + 'A shipped function runs alone on the workers: define what it needs inside it, or pass it in the arguments',
      { variables: outside });
  }
}

/** The names a function's source reads or writes that neither it nor the sandbox defines, in order of first use. */
export function freeVariables(functionSource: string): string[] {
  // eslint-scope needs node ranges, and no ParenthesizedExpression nodes: a parse of its own.
  const program = acorn.parse(`(${functionSource}\n)`, { ecmaVersion: 'latest', ranges: true });
  const scopes = analyze(program as never, { ecmaVersion: 2022, sourceType: 'script' });
  const names: string[] = [];
  for (const ref of scopes.globalScope!.through) {
    const name = ref.identifier.name;
    if (!SANDBOX_GLOBALS.has(name) && !names.includes(name)) names.push(name);
  }
  return names;
}
