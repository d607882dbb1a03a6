/**
 * The worker thread behind python-code-check.ts: loads one Pyodide interpreter and checks
 * Python map functions with Python's own parser (`ast`) and symbol tables (`symtable`).
 * Neither runs the code it reads.
 */
import type { PyodideModule } from '../../host/pyodide-api.ts';
import { parentPort, workerData } from 'node:worker_threads';

/** Returns '<name>' when the source is one acceptable function, else '!' and the problem. */
const CHECK = `
import ast as _ast, builtins as _builtins, symtable as _symtable

def _cc_check(source):
    try:
        tree = _ast.parse(source, '<function>')
    except SyntaxError as e:
        return f"!SyntaxError on line {e.lineno}: {e.msg}"
    except (RecursionError, MemoryError) as e:
        return f"!the source is nested too deeply to parse ({type(e).__name__})"
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], _ast.FunctionDef):
        kinds = ', '.join(f"{type(n).__name__} on line {n.lineno}" for n in body[:5]) or 'nothing'
        what = 'an async def' if len(body) == 1 and isinstance(body[0], _ast.AsyncFunctionDef) else kinds
        return f"!the code must be exactly one top-level 'def name(arg): ...' and nothing else; it has {what}"
    fn = body[0]
    if fn.decorator_list:
        return f"!the function {fn.name} has decorators (line {fn.decorator_list[0].lineno}); none are allowed"
    try:
        table = _symtable.symtable(source, '<function>', 'exec')
    except SyntaxError as e:
        return f"!SyntaxError on line {e.lineno}: {e.msg}"
    builtin_names = set(dir(_builtins))
    free = set()
    def walk(t):
        for s in t.get_symbols():
            if s.is_referenced() or s.is_assigned():
                if (s.is_global() or s.is_declared_global()) and s.get_name() not in builtin_names and s.get_name() != fn.name:
                    free.add(s.get_name())
        for child in t.get_children():
            walk(child)
    for child in table.get_children():
        walk(child)
    if free:
        names = ', '.join(sorted(free)[:20])
        return (f"!the function {fn.name} uses names it neither defines nor imports: {names} "
                "(import the standard-library modules it needs inside the function)")
    return fn.name
`;

const { pyodideUrl } = workerData as { pyodideUrl: string };
const { loadPyodide } = await import(pyodideUrl) as PyodideModule;
const py = await loadPyodide({ jsglobals: {}, env: {}, stdout: () => {}, stderr: () => {} });
const ns = (py.globals.get('dict') as () => { get(k: string): unknown })();
py.runPython(CHECK, { globals: ns as never });
const check = ns.get('_cc_check') as (source: string) => string;

parentPort!.on('message', (m: { id: number; source: string }) => {
  let answer: string;
  try {
    answer = check(m.source);
  } catch (err) {
    // The interpreter failed (a parser run out of stack): this thread is done.
    parentPort!.postMessage({ id: m.id, fatal: `the checker failed: ${String((err as Error)?.message ?? err).split('\n')[0]}` });
    process.exit(1);
  }
  parentPort!.postMessage({ id: m.id, answer });
});
parentPort!.postMessage({ ready: true });
