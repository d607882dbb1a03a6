/**
 * What runs inside a Web Worker that runs Python map functions: Pyodide (CPython compiled to
 * WebAssembly), booted from files the page hands over by postMessage. The worker is made from
 * a `data:` URL (an opaque origin, like the JavaScript sandbox), and before anything loads it
 * loses every way out: `fetch` answers only the handed-over files while Pyodide boots and is
 * then taken away with `XMLHttpRequest`, `WebSocket`, `importScripts`, storage and the rest.
 * Python's own doors to JavaScript (`import js`, `pyodide_js`, `pyodide.ffi`, `pyodide.http`)
 * are shut by a meta-path finder; those are a convenience, not the boundary: whatever a
 * function reaches in the worker's global scope can touch neither the network nor the page.
 */

/** The worker's script (classic, evaluated from a `data:` URL). */
const SOURCE = `
'use strict';
let files = null;
// Gone before anything else runs. fetch stays for Pyodide's boot, answering from the handed-over files only.
for (const name of ['XMLHttpRequest', 'WebSocket', 'EventSource', 'importScripts', 'indexedDB', 'caches',
  'BroadcastChannel', 'Worker', 'SharedWorker', 'WebTransport', 'navigator']) {
  try { Object.defineProperty(self, name, { value: undefined, configurable: false, writable: false }); } catch (e) {}
}
Object.defineProperty(self, 'fetch', { configurable: true, writable: true, value: async (url) => {
  const name = String(url instanceof Request ? url.url : url).split('/').pop();
  const f = files && files[name];
  if (f === undefined) throw new TypeError('no network in a map function\\'s sandbox: ' + String(url));
  return new Response(f, { headers: { 'content-type': name.endsWith('.wasm') ? 'application/wasm' : 'application/octet-stream' } });
} });
let pyodide = null;
let load = null;
let run = null;
const describe = (i, e) => ({ index: i, name: e && e.name ? String(e.name) : 'Error',
  message: String(e && e.message !== undefined ? e.message : e), stack: e && e.stack ? String(e.stack) : undefined });

async function boot(m) {
  files = m.files;
  const base = m.indexURL;
  (0, eval)(files['pyodide.js']);
  // The runtime is an ES module; a data: worker can import nothing, so it is evaluated as a function body instead.
  const asm = files['pyodide.asm.mjs'];
  const tail = /export default _createPyodideModule;\\s*$/;
  if (!tail.test(asm)) throw new Error('this version of Pyodide is not laid out as expected (pyodide.asm.mjs does not end with its default export)');
  const createPyodideModule = (0, eval)('(function () {' + asm.replace(tail, '').split('import.meta.url').join(JSON.stringify(base + 'pyodide.asm.mjs')) + '\\nreturn _createPyodideModule; })')();
  // The page compiled the (memory-capped) module once for all its workers: instantiate that one rather than compile it again.
  const streaming = WebAssembly.instantiateStreaming;
  // (Pyodide still asks for the module's file, and gets an empty answer it never reads.)
  if (m.wasm instanceof WebAssembly.Module) {
    WebAssembly.instantiateStreaming = async (_response, imports) => ({ module: m.wasm, instance: await WebAssembly.instantiate(m.wasm, imports) });
    files['pyodide.asm.wasm'] = new Uint8Array(0);
  } else files['pyodide.asm.wasm'] = m.wasm;
  try {
    pyodide = await self.loadPyodide({ indexURL: base, lockFileContents: files['pyodide-lock.json'], createPyodideModule,
      stdout: () => {}, stderr: () => {}, checkAPIVersion: true });
  } finally { WebAssembly.instantiateStreaming = streaming; }
  files = null;
  Object.defineProperty(self, 'fetch', { value: undefined, configurable: false, writable: false });
  for (const name of ['loadPyodide', 'Request', 'Response']) { try { Object.defineProperty(self, name, { value: undefined, configurable: false, writable: false }); } catch (e) {} }
  pyodide.runPython(m.setup);
  load = pyodide.globals.get('_cc_load');
  run = pyodide.globals.get('_cc_run');
  pyodide.runPython('del _cc_load, _cc_run');
}

self.onmessage = async (event) => {
  const m = event.data;
  if (m.type === 'boot') {
    try { await boot(m); self.postMessage({ type: 'ready' }); } catch (e) { self.postMessage({ type: 'boot-error', error: describe(-1, e) }); }
    return;
  }
  if (m.type === 'load') {
    try {
      const err = load(m.code);
      if (err) self.postMessage({ type: 'load-error', error: JSON.parse(err) }); else self.postMessage({ type: 'loaded' });
    } catch (e) { self.postMessage({ type: 'crash', error: describe(-1, e) }); }
    return;
  }
  try {
    const out = JSON.parse(run(JSON.stringify(m.args)));
    self.postMessage({ type: 'done', json: JSON.stringify(out.results), errors: out.errors });
  } catch (e) { self.postMessage({ type: 'crash', error: describe(-1, e) }); }
};`;

/** The worker's address. */
export const PYTHON_SANDBOX_URL = `data:text/javascript;charset=utf-8,${encodeURIComponent(SOURCE)}`;

/**
 * Python run once Pyodide has booted: shut the doors to JavaScript, and define `_cc_load`
 * (take a job's source: exactly one top-level `def`) and `_cc_run` (call the function on
 * each argument of a chunk, JSON in and out, a failure per argument that raised).
 */
export const PYTHON_SETUP = String.raw`
import ast as _ast, json as _json, sys as _sys, traceback as _traceback

_BLOCKED = ('js', 'pyodide_js', 'pyodide', '_pyodide', '_pyodide_core', 'pyodide.ffi', 'pyodide.http')

def _blocked(name):
    return any(name == b or name.startswith(b + '.') for b in _BLOCKED)

class _NoJavaScript:
    """Refuses the modules through which Python reaches JavaScript."""
    @staticmethod
    def find_spec(name, path=None, target=None):
        if _blocked(name):
            raise ModuleNotFoundError(f"No module named {name!r}: a map function runs apart from the browser page and has no access to JavaScript", name=name)
        return None

for _name in [n for n in _sys.modules if _blocked(n)]:
    del _sys.modules[_name]
_sys.meta_path[:] = [_NoJavaScript] + [f for f in _sys.meta_path if 'pyodide' not in getattr(type(f), '__module__', '') and 'pyodide' not in getattr(f, '__module__', '')]
del _name

_fn = None

def _cc_load(code):
    global _fn
    try:
        tree = _ast.parse(code, '<map function>')
        if len(tree.body) != 1 or not isinstance(tree.body[0], _ast.FunctionDef):
            return _json.dumps({'index': -1, 'name': 'SyntaxError', 'message': 'the code must be exactly one top-level def name(arg): ... and nothing else'})
        scope = {'__name__': '__map__', '__builtins__': __builtins__}
        exec(compile(tree, '<map function>', 'exec'), scope)
        _fn = scope[tree.body[0].name]
        return None
    except BaseException as e:
        return _json.dumps({'index': -1, 'name': type(e).__name__, 'message': str(e), 'stack': _traceback.format_exc()[-4000:]})

def _cc_run(args_json):
    results, errors = [], []
    for i, arg in enumerate(_json.loads(args_json)):
        try:
            value = _fn(arg)
            try:
                _json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise TypeError(f"the function's result cannot be turned into JSON: {e}") from None
            results.append(value)
        except BaseException as e:
            results.append(None)
            errors.append({'index': i, 'name': type(e).__name__, 'message': str(e), 'stack': _traceback.format_exc()[-4000:]})
    return _json.dumps({'results': results, 'errors': errors}, allow_nan=False)
`;
