/**
 * Pyodide (CPython compiled to WebAssembly) for the browser tabs that run Python map
 * functions: its runtime files, served from the installed `pyodide` package under
 * /pyodide/<version>/. The version is in the path, so a file's content never changes at its
 * address: it is served as immutable and a tab downloads it once, whatever the number of
 * jobs or page loads after. None of these files holds anything secret.
 * @internal
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

const require = createRequire(import.meta.url);

/** The installed package's folder (its package.json sits beside the runtime files). */
const PYODIDE_DIR = dirname(require.resolve('pyodide/package.json'));

/** The installed Pyodide's version, e.g. `314.0.8`. */
export const PYODIDE_VERSION: string = (JSON.parse(readFileSync(join(PYODIDE_DIR, 'package.json'), 'utf8')) as { version: string }).version;

/** Where a page finds the files: `/pyodide/<version>/`. */
export const PYODIDE_PATH = `/pyodide/${PYODIDE_VERSION}/`;

/** The files a tab may load, by their content type. The loader is the classic script (pyodide.js). */
const FILES: Record<string, string> = {
  'pyodide.js': 'text/javascript; charset=utf-8',
  'pyodide.mjs': 'text/javascript; charset=utf-8',
  'pyodide.asm.mjs': 'text/javascript; charset=utf-8',
  'pyodide.asm.wasm': 'application/wasm',
  'python_stdlib.zip': 'application/zip',
  'pyodide-lock.json': 'application/json; charset=utf-8',
};

/** A year, and never revalidated: the address names the version. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Serve GET /pyodide/<version>/<file> (the installed version only; any other is not found). */
export function registerPyodideAssets(app: FastifyInstance): void {
  app.get('/pyodide/:version/:file', { schema: { hide: true }, config: { access: 'open' } }, async (req, reply) => {
    const { version, file } = req.params as { version: string; file: string };
    const type = FILES[file];
    if (version !== PYODIDE_VERSION || type === undefined) return reply.callNotFound();
    reply.header('cache-control', IMMUTABLE);
    reply.type(type);
    // sendFile would set its own cache-control (max-age=0) over ours.
    return reply.sendFile(file, PYODIDE_DIR, { cacheControl: false });
  });
}
