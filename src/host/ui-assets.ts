/**
 * The browser pages' files, served by the foreman and by the worker's status server alike:
 * the pages' own modules and styles from the package's `ui/` folder, and the few front-end
 * libraries they use (Preact with htm for rendering, uPlot for charts) straight from
 * node_modules. Nothing is built at run time; the pages load them as ES modules through the
 * import map below. None of these files holds anything secret: they are served to anyone.
 * @internal
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire, stripTypeScriptTypes } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';

const require = createRequire(import.meta.url);
const dist = (pkg: string) => dirname(require.resolve(pkg));

/** The package's `ui/` folder: two levels up from src/host/ and from dist/host/ alike. */
export const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));

/** Library files by the name the pages ask for under /ui/vendor/. */
const VENDOR: Record<string, () => string> = {
  'preact.mjs': () => join(dist('preact'), 'preact.mjs'),
  'hooks.mjs': () => join(dist('preact/hooks'), 'hooks.mjs'),
  'htm.mjs': () => join(dist('htm'), 'htm.mjs'),
  'uplot.mjs': () => join(dist('uplot'), 'uPlot.esm.js'),
  'uplot.css': () => join(dist('uplot'), 'uPlot.min.css'),
  'eventemitter3.mjs': () => join(dist('eventemitter3'), 'dist', 'eventemitter3.esm.js'),
};

/** Whole library folders, for libraries that are many ES modules importing one another. */
const VENDOR_DIRS: Record<string, () => string> = {
  zod: () => dist('zod'),
  'noble-hashes': () => dirname(require.resolve('@noble/hashes/hmac.js')),
};

/** The import map every page carries, so that its modules can `import { h } from 'preact'`. */
export const IMPORT_MAP = JSON.stringify({
  imports: {
    preact: '/ui/vendor/preact.mjs', 'preact/hooks': '/ui/vendor/hooks.mjs', htm: '/ui/vendor/htm.mjs', uplot: '/ui/vendor/uplot.mjs',
    // What the worker runtime needs when it runs in a browser tab (the join page).
    zod: '/ui/vendor/zod/index.js', eventemitter3: '/ui/vendor/eventemitter3.mjs', '@noble/hashes/': '/ui/vendor/noble-hashes/',
  },
});

/**
 * The package's own modules that a browser may load (under /ui/lib/): the worker runtime and
 * what it imports, nothing of the foreman or the store. From a checkout they are the
 * TypeScript sources with their types stripped (as Node itself runs them); from the installed
 * package, the compiled JavaScript.
 */
const LIB_PATH = /^(worker\/runtime|worker\/browser|protocol|core|link)\/[a-z0-9-]+\.(ts|js)$/;
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const stripped = new Map<string, { mtimeMs: number; code: string }>();

/** The JavaScript of a package module, or null when it is not one a browser may load. */
function libModule(path: string): string | null {
  if (!LIB_PATH.test(path) || path.includes('.test.')) return null;
  const base = path.replace(/\.(ts|js)$/, '');
  const source = join(PACKAGE_ROOT, 'src', `${base}.ts`);
  if (existsSync(source)) {
    const { mtimeMs } = statSync(source);
    const hit = stripped.get(source);
    if (hit && hit.mtimeMs === mtimeMs) return hit.code;
    const code = stripTypeScriptTypes(readFileSync(source, 'utf8'), { mode: 'strip' });
    stripped.set(source, { mtimeMs, code });
    return code;
  }
  const compiled = join(PACKAGE_ROOT, 'dist', `${base}.js`);
  return existsSync(compiled) ? readFileSync(compiled, 'utf8') : null;
}

/**
 * The HTML shell of a page: a title, the shared style, the import map, and one module that
 * renders everything else. The page's data never passes through this string. The import map
 * is the only inline script the pages' policy allows (by its hash, in page-headers.ts): add
 * styles and scripts as files under ui/, never inline.
 */
export function pageShell(title: string, module: string, extraHead = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/style.css">${extraHead}
<script type="importmap">${IMPORT_MAP}</script>
<script type="module" src="${module}"></script>
</head><body><div id="app"></div></body></html>`;
}

/** Serve /ui/* (the pages' modules and styles) and /ui/vendor/* (the libraries). */
export async function registerUiAssets(app: FastifyInstance): Promise<void> {
  const files = new Map(Object.entries(VENDOR).map(([name, path]) => [name, path()]));
  app.get('/ui/vendor/:file', { schema: { hide: true }, config: { access: 'open' } }, async (req, reply) => {
    const path = files.get((req.params as { file: string }).file);
    if (!path) return reply.callNotFound();
    reply.header('cache-control', 'public, max-age=86400');
    return reply.sendFile(path.split('/').pop()!, dirname(path));
  });
  const dirs = new Map(Object.entries(VENDOR_DIRS).map(([name, dir]) => [name, dir()]));
  app.get('/ui/vendor/:lib/*', { schema: { hide: true }, config: { access: 'open' } }, async (req, reply) => {
    const { lib, '*': file } = req.params as { lib: string; '*': string };
    const dir = dirs.get(lib);
    // Only the libraries' own ES modules, by a plain relative path.
    if (!dir || !/^[\w./-]+\.js$/.test(file) || file.split('/').includes('..')) return reply.callNotFound();
    reply.header('cache-control', 'public, max-age=86400');
    return reply.sendFile(file, dir);
  });
  app.get('/ui/lib/*', { schema: { hide: true }, config: { access: 'open' } }, async (req, reply) => {
    const code = libModule((req.params as { '*': string })['*']);
    if (code === null) return reply.callNotFound();
    reply.type('text/javascript; charset=utf-8');
    return code;
  });
  // Browsers ask for it on every page, the login page included.
  app.get('/favicon.ico', { schema: { hide: true }, config: { access: 'open' } }, async (_req, reply) => reply.redirect('/ui/favicon.svg', 301));
  await app.register(fastifyStatic, { root: UI_DIR, prefix: '/ui/', decorateReply: true, index: false, wildcard: true, cacheControl: true, maxAge: 0 });
}
