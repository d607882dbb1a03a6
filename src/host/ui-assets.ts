/**
 * The browser pages' files, served by the foreman and by the worker's status server alike:
 * the pages' own modules and styles from the package's `ui/` folder, and the few front-end
 * libraries they use (Preact with htm for rendering, uPlot for charts) straight from
 * node_modules. Nothing is built at run time; the pages load them as ES modules through the
 * import map below. None of these files holds anything secret: they are served to anyone.
 * @internal
 */
import { createRequire } from 'node:module';
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
};

/** The import map every page carries, so that its modules can `import { h } from 'preact'`. */
export const IMPORT_MAP = JSON.stringify({
  imports: { preact: '/ui/vendor/preact.mjs', 'preact/hooks': '/ui/vendor/hooks.mjs', htm: '/ui/vendor/htm.mjs', uplot: '/ui/vendor/uplot.mjs' },
});

/**
 * The HTML shell of a page: a title, the shared style, the import map, and one module that
 * renders everything else. The page's data never passes through this string.
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
  // Browsers ask for it on every page, the login page included.
  app.get('/favicon.ico', { schema: { hide: true }, config: { access: 'open' } }, async (_req, reply) => reply.redirect('/ui/favicon.svg', 301));
  await app.register(fastifyStatic, { root: UI_DIR, prefix: '/ui/', decorateReply: true, index: false, wildcard: true, cacheControl: true, maxAge: 0 });
}
