/**
 * Python map functions in a browser tab, in Chromium: the join page's own executor runs them
 * in Pyodide inside sandboxed Web Workers, under the join page's Content-Security-Policy.
 * Results in order, an argument that raises (or reaches for JavaScript) fails alone, a busy
 * loop is stopped at its time limit and the next task runs, the worker has no network, and
 * the tab downloads Pyodide's files once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';
import { browserSkip, launchBrowser, newContext } from '../support/browser.ts';

/** The result of a run in the page: its results, or its error's code, message and details. */
interface Outcome { results?: unknown[]; code?: string; message?: string; details?: { failedArguments?: { index: number; name: string; message: string }[] }; partial?: unknown[] }

test('a tab runs Python map functions in Pyodide Web Workers, contained, and fetches Pyodide once', { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman({ insecure: true });
  const browser = await launchBrowser();
  try {
    const context = await newContext(browser);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|CSP/.test(m.text())) errors.push(m.text()); });
    const pyodideRequests: string[] = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/pyodide/')) pyodideRequests.push(r.url()); });
    await page.goto(`${foreman.url}/join`);
    const base = await page.locator('meta[name="crowdcompute-pyodide"]').getAttribute('content');
    assert.match(base ?? '', /^\/pyodide\/\d+\.\d+\.\d+\/$/);

    // The files are served as immutable, so that a browser keeps them.
    const head = await foreman.fetch(`${base}pyodide.asm.wasm`);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'application/wasm');
    assert.match(head.headers.get('cache-control') ?? '', /max-age=31536000.*immutable/);
    await head.arrayBuffer();
    assert.equal((await foreman.fetch(`${base}package.json`)).status, 404, 'only the runtime files are served');
    assert.equal((await foreman.fetch('/pyodide/0.0.1/pyodide.js')).status, 404, 'only the installed version');

    // The page's own executor (the one the tab's worker runtime uses), made in the page.
    await page.evaluate(async (pyodideUrl) => {
      const module = '/ui/lib/worker/browser/web-worker-executor.js';
      const { WebWorkerExecutor } = await import(module) as { WebWorkerExecutor: new (o: object) => unknown };
      (window as unknown as { ex: unknown }).ex = new WebWorkerExecutor({ pyodideUrl, maxIdle: 4 });
    }, base!);
    const run = (jobId: string, code: string | null, args: unknown[], timeoutMs: number | null = 60_000) => page.evaluate(async ([jobId, code, args, timeoutMs]) => {
      const ex = (window as unknown as { ex: { setCode(j: string, c: string, l: string): void; start(j: string, a: unknown[], t: number | null, o?: number): { result: Promise<unknown[]> } } }).ex;
      if (code !== null) ex.setCode(jobId, code, 'python');
      try {
        return { results: await ex.start(jobId, args, timeoutMs, 0).result } as Outcome;
      } catch (e) {
        const err = e as { code?: string; message: string; details?: Outcome['details']; partialResults?: unknown[] };
        return { code: err.code, message: err.message, details: err.details, partial: err.partialResults } as Outcome;
      }
    }, [jobId, code, args, timeoutMs] as const);

    // Results in argument order, standard-library imports inside the function allowed.
    const square = 'def f(x):\n    import math\n    return {"x": x, "root": math.isqrt(x * x), "s": str(x) * 2}\n';
    const first = await run('job-a', square, [1, 2, 3, 40]);
    assert.deepEqual(first.results, [1, 2, 3, 40].map((x) => ({ x, root: x, s: String(x).repeat(2) })), JSON.stringify(first));

    // An argument that raises fails alone, named by its exception type; the others keep their results.
    const picky = await run('job-b', 'def f(x):\n    return 10 // x\n', [5, 0, 2]);
    assert.equal(picky.code, 'CC_ERR_HANDLER_FAILED', JSON.stringify(picky));
    assert.deepEqual(picky.partial, [2, null, 5]);
    assert.deepEqual(picky.details?.failedArguments?.map((f) => [f.index, f.name]), [[1, 'ZeroDivisionError']]);
    // A result that is not JSON fails its argument too.
    const notJson = await run('job-c', 'def f(x):\n    return {1, 2} if x else float("nan")\n', [1, 0]);
    assert.deepEqual(notJson.details?.failedArguments?.map((f) => f.name), ['TypeError', 'TypeError'], JSON.stringify(notJson));

    // Python's doors to JavaScript are shut, and the worker's global scope has no network whatever the route.
    const escapes = await run('job-d', [
      'def f(what):',
      '    if what == "js":',
      '        import js',
      '        return js.fetch is not None',
      '    if what == "pyodide_js":',
      '        import pyodide_js',
      '        return 1',
      '    if what == "ffi":',
      '        from pyodide.ffi import to_js',
      '        return 1',
      '    if what == "http":',
      '        import pyodide.http',
      '        return 1',
      '    if what == "gc":',
      '        import gc',
      '        import sys',
      '        seen = [v for m in list(sys.modules.values()) for v in list(vars(m).values())] + gc.get_objects()',
      '        seen += [r for o in list(seen) for r in gc.get_referents(o)]',
      '        scopes = [o for o in seen if "JsProxy" in type(o).__name__ and hasattr(o, "postMessage")]',
      '        ways_out = [o for o in scopes if any(getattr(o, n, None) is not None for n in ("fetch", "XMLHttpRequest", "WebSocket", "importScripts", "indexedDB"))]',
      '        return [len(scopes), len(ways_out)]',
      '    return "plain"',
    ].join('\n'), ['js', 'pyodide_js', 'ffi', 'http', 'gc', 'other']);
    assert.equal(escapes.code, 'CC_ERR_HANDLER_FAILED', JSON.stringify(escapes));
    assert.deepEqual(escapes.details?.failedArguments?.map((f) => [f.index, f.name]), [[0, 'ModuleNotFoundError'], [1, 'ModuleNotFoundError'], [2, 'ModuleNotFoundError'], [3, 'ModuleNotFoundError']], JSON.stringify(escapes));
    const [scopes, waysOut] = escapes.partial?.[4] as [number, number];
    assert.ok(scopes > 0, 'Python still holds the worker\'s global scope somewhere (so the check below checks something)');
    assert.equal(waysOut, 0, 'and it has no way to the network');
    assert.equal(escapes.partial?.[5], 'plain');

    // The interpreter's memory is capped (512 MiB by default): past it, Python raises MemoryError.
    const greedy = await run('job-m', 'def f(n):\n    return len(bytearray(n))\n', [1_000_000, 700 * 1_048_576]);
    assert.deepEqual(greedy.partial?.[0], 1_000_000, JSON.stringify(greedy));
    assert.deepEqual(greedy.details?.failedArguments?.map((f) => [f.index, f.name]), [[1, 'MemoryError']]);

    // Code that is not one def is refused at loading.
    const twoDefs = await run('job-e', 'def f(x):\n    return x\ndef g(x):\n    return x\n', [1]);
    assert.equal(twoDefs.code, 'CC_ERR_CODE_COMPILE', JSON.stringify(twoDefs));
    const bad = await run('job-f', 'def f(x) return x\n', [1]);
    assert.equal(bad.code, 'CC_ERR_CODE_COMPILE');
    assert.match(bad.message ?? '', /SyntaxError/);

    // A busy loop is stopped at its time limit, its worker terminated; the next task runs.
    const forever = await run('job-g', 'def f(x):\n    while True:\n        x += 1\n', [1], 1_500);
    assert.equal(forever.code, 'CC_ERR_TIMEOUT', JSON.stringify(forever));
    const after = await run('job-a', null, [7]);
    assert.deepEqual(after.results, [{ x: 7, root: 7, s: '77' }]);
    const fresh = await run('job-h', 'def f(x):\n    return [x] * 3\n', [9]);
    assert.deepEqual(fresh.results, [[9, 9, 9]]);

    // Pyodide's files were each downloaded once, for all those workers.
    const names = pyodideRequests.map((u) => u.split('/').pop()).sort();
    assert.deepEqual(names, ['pyodide-lock.json', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'pyodide.js', 'python_stdlib.zip'], pyodideRequests.join('\n'));
    await page.evaluate(() => (window as unknown as { ex: { dispose(): void } }).ex.dispose());
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await browser.close();
    await foreman.cleanup();
  }
});

test('a tab that joined with a link runs Python map jobs sent to browsers, and downloads Pyodide once', { skip: browserSkip, timeout: 170_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 500 });
  const client = new Client({ url: foreman.url });
  const browser = await launchBrowser();
  try {
    const res = await foreman.fetch('/api/join-links', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const url = (await res.json()).url as string;
    const context = await newContext(browser);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const downloads: string[] = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/pyodide/')) downloads.push(r.url()); });
    await page.goto(url);
    await waitFor(async () => /Connected|Working/.test((await page.locator('[data-testid=status]').textContent()) ?? '') || null, { timeoutMs: 30_000, message: 'the tab joins' });

    // Submitted as a raw job spec over REST, as any client may.
    const submitted = await foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({
      kind: 'map', language: 'python', run_on: 'browser', chunk_size: 5,
      code: 'def cube(x):\n    return x * x * x\n', args: Array.from({ length: 30 }, (_, i) => i),
    }) });
    assert.ok(submitted.status < 300, await submitted.clone().text());
    const { job_id: jobId } = await submitted.json() as { job_id: string };
    await waitFor(async () => (await client.getJob(jobId)).status === 'completed' || null, { timeoutMs: 60_000, message: 'the Python job completes in the tab' });
    const first = (await client.getJobResults(jobId)).results;
    assert.deepEqual(first, Array.from({ length: 30 }, (_, i) => i ** 3));
    assert.ok((await client.getJobTasks(jobId)).every((t) => t.workerId?.startsWith('browser-')), 'the tab ran it');
    const afterFirst = downloads.length;
    assert.equal(afterFirst, 5, `each of Pyodide's files once: ${downloads.join(', ')}`);

    // Reaching for JavaScript fails that argument alone.
    const reach = await client.submitMap({ python: 'def f(x):\n    if x == 1:\n        import js\n    return x\n' }, [0, 1, 2], { runOn: 'browser', chunkSize: 3 });
    const o = await reach.outcome();
    assert.equal(o.state, 'failed');
    assert.deepEqual(o.results, [0, null, 2]);
    assert.match(JSON.stringify(o.failures[0]), /ModuleNotFoundError/);

    // A busy loop is stopped at its limit; the tab runs the next task, Python and JavaScript alike.
    const runaway = await client.submitMap({ python: 'def f(x):\n    while x == 1:\n        pass\n    return x\n' }, [0, 1, 2], { runOn: 'browser', chunkSize: 1, timeoutMs: 2_000 });
    const r = await runaway.outcome();
    assert.deepEqual(r.results, [0, null, 2]);
    assert.equal(r.failures[0]?.error?.code, 'CC_ERR_TIMEOUT', JSON.stringify(r.failures));
    assert.deepEqual(await client.map({ python: 'def f(s):\n    return s.upper()\n' }, ['a', 'b'], { runOn: 'browser' }), ['A', 'B']);
    assert.deepEqual(await client.map((x: number) => x + 1, [1], { runOn: 'browser' }), [2]);
    assert.equal(downloads.length, afterFirst, 'later jobs download nothing more');
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await browser.close();
    await client.close();
    await foreman.cleanup();
  }
});
