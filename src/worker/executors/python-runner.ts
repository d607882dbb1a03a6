/**
 * The Python that runs inside each Pyodide interpreter of a Python sandbox process, around the
 * shipped functions. Arguments go in and results come out as JSON text, as in the JavaScript
 * sandbox (sandbox-runner.ts reads the answer): each result goes through `json.dumps` with
 * `allow_nan=False` inside Python, so only plain JSON values leave, and a result that is not
 * one (a generator, a set, a cycle, NaN) fails its own argument with the reason.
 */

/**
 * Modules the shipped code may not import: Pyodide's bridges to JavaScript (through them Python
 * could call the sandbox process's JavaScript), and modules for the host's sockets, processes
 * and native code, none of which a map function needs. A name blocks its submodules too.
 */
export const BLOCKED_MODULES = [
  'js', 'pyodide_js', 'pyodide', '_pyodide', '_pyodide_core', 'micropip',
  'ctypes', '_ctypes', 'socket', '_socket', 'ssl', '_ssl', 'select', 'selectors',
  'subprocess', '_posixsubprocess', 'multiprocessing', '_multiprocessing',
] as const;

/**
 * Defines `_cc_set(job_id, source)` (compile and keep a job's function), `_cc_forget(job_id)`
 * and `_cc_run(job_id, args_json)` (call it on each argument), run by the sandbox process in a
 * namespace of its own. The import blocker goes in first, and the blocked modules already
 * loaded (Pyodide's own) leave `sys.modules`.
 */
export const pythonRunner = (memoryLimitMb: number): string => `
_CC_MEMORY_MB = ${memoryLimitMb}
import ast as _ast, builtins as _builtins, json as _json, linecache as _linecache, sys as _sys, traceback as _traceback

class _CcBlocker:
    blocked = frozenset(${JSON.stringify(BLOCKED_MODULES)})
    @classmethod
    def _hit(cls, name):
        return name.split('.', 1)[0] in cls.blocked
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if cls._hit(name):
            raise ModuleNotFoundError(f"module {name!r} is not available in the sandbox", name=name)
        return None

_sys.meta_path.insert(0, _CcBlocker)
for _name in list(_sys.modules):
    if _CcBlocker._hit(_name):
        del _sys.modules[_name]

_cc_fns = {}

def _cc_set(job_id, source):
    # Returns '' when the function is ready, else what is wrong with the source.
    _cc_fns.pop(job_id, None)
    filename = f"<map function of job {job_id}>"
    try:
        tree = _ast.parse(source, filename)
    except SyntaxError as e:
        return f"{type(e).__name__} on line {e.lineno}: {e.msg}"
    defs = [n for n in tree.body if isinstance(n, _ast.FunctionDef)]
    if len(tree.body) != 1 or len(defs) != 1:
        return "the code must be exactly one top-level 'def name(arg): ...' and nothing else"
    _linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns = {'__builtins__': _builtins, '__name__': '__map__'}
    try:
        exec(compile(tree, filename, 'exec'), ns)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    _cc_fns[job_id] = ns[defs[0].name]
    return ''

def _cc_forget(job_id):
    _cc_fns.pop(job_id, None)

def _cc_error(i, e):
    # The traceback without this runner's frame: it starts in the shipped function. Its frames'
    # locals go first, so that what filled the memory is freed before the text is made.
    tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
    message = str(e)
    if isinstance(e, MemoryError) and not message:
        message = f"out of memory (the sandbox's limit is {_CC_MEMORY_MB} MiB)"
    try:
        _traceback.clear_frames(tb)
        stack = ''.join(_traceback.format_exception(type(e), e, tb))
    except BaseException:
        stack = None
    return {'index': i, 'name': type(e).__name__, 'message': message, 'stack': stack}

def _cc_run(job_id, args_json):
    fn = _cc_fns[job_id]
    args = _json.loads(args_json)
    out = []
    errors = []
    for i, arg in enumerate(args):
        try:
            value = fn(arg)
        except BaseException as e:
            errors.append(_cc_error(i, e))
            out.append('null')
            continue
        try:
            out.append(_json.dumps(value, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as e:
            errors.append({'index': i, 'name': type(e).__name__, 'stack': None,
                           'message': f"the result is not a JSON value ({e})"})
            out.append('null')
    results = '[' + ','.join(out) + ']'
    if not errors:
        return results
    return '{"__ccPartial":{"results":' + results + ',"errors":' + _json.dumps(errors) + '}}'
`;
