/**
 * The security headers of every answer of the foreman and of the worker's status server: a
 * Content-Security-Policy, `X-Content-Type-Options: nosniff`, a Referrer-Policy and, for
 * browsers older than `frame-ancestors`, `X-Frame-Options`. A small hook rather than
 * @fastify/helmet: the policy is one string per kind of page either way, and helmet's defaults
 * would need undoing here (`upgrade-insecure-requests` breaks a plain-HTTP foreman reached by
 * its LAN address, HSTS pins a self-signed TLS foreman for a year).
 * @internal
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { IMPORT_MAP } from './ui-assets.ts';

/** The pages' one inline script, the import map, allowed by its hash (it never changes at run time). */
const IMPORT_MAP_SOURCE = `'sha256-${createHash('sha256').update(IMPORT_MAP).digest('base64')}'`;

/** A policy from directives, in the header's syntax. */
const policy = (directives: Record<string, string[]>) => Object.entries(directives).map(([name, sources]) => `${name} ${sources.join(' ')}`).join('; ');

const BASE: Record<string, string[]> = {
  // Nothing but what is named below: no plugins, no frames, no fonts or media from anywhere.
  'default-src': ["'none'"],
  // The pages' modules, the libraries under /ui/vendor/ and the import map; no inline script,
  // no event-handler attributes, no eval.
  'script-src': ["'self'", IMPORT_MAP_SOURCE],
  // Stylesheets from /ui/ only. Preact and uPlot set element styles through the DOM
  // (element.style), which a policy does not restrict; a style attribute in markup it does.
  'style-src': ["'self'"],
  // data: for the images the API docs draw inline (icons, its logo).
  'img-src': ["'self'", 'data:'],
  // REST, server-sent events and WebSocket, to the page's own origin only ('self' covers ws: and wss:).
  'connect-src': ["'self'"],
  'manifest-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  // No site may show these pages in a frame (clickjacking).
  'frame-ancestors': ["'none'"],
};

/** The policy of every page and answer but the join page's. */
export const PAGE_CSP = policy(BASE);

/**
 * The join page's policy: the one above, plus what running shipped functions in the tab needs.
 * They run in Web Workers made from `data:` URLs (an opaque origin: nothing of the page or its
 * site can be reached from them), and such a worker inherits the policy of the page that made
 * it, so this page alone allows `data:` workers and `'unsafe-eval'` (the worker turns the
 * function's source into a function with eval, and the function itself may use eval or
 * `Function`, as it may in a Node worker's isolate). Python functions run in Pyodide, CPython
 * compiled to WebAssembly: the page fetches its files from /pyodide/ (the page's own origin)
 * and compiles its module, which `'wasm-unsafe-eval'` allows (browsers that count WebAssembly
 * under `'unsafe-eval'` need it named no more than the others). The dashboard's pages allow none of these.
 */
export const JOIN_PAGE_CSP = policy({ ...BASE, 'script-src': [...BASE['script-src']!, "'unsafe-eval'", "'wasm-unsafe-eval'"], 'worker-src': ['data:'] });

/**
 * The API docs' policy (/docs, served by @fastify/swagger-ui): the one above, plus the inline
 * `<style>` of the Swagger logo, by its hash. A version of swagger-ui that changes the logo
 * loses only the logo's colours, and test/browser/page-security.test.ts reports it.
 */
export const DOCS_CSP = policy({ ...BASE, 'style-src': [...BASE['style-src']!, "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"] });

/**
 * `same-origin`: a link or request to another site carries no Referer (page paths hold job and
 * worker ids), while the foreman's own requests keep theirs, and a form posted to the foreman
 * keeps its Origin (under `no-referrer` browsers send `Origin: null`), which a reverse proxy
 * in front may check.
 */
export const REFERRER_POLICY = 'same-origin';

/**
 * Give every answer of `app` the headers above. A route may set its own
 * Content-Security-Policy (the join page, the API docs); the others get {@link PAGE_CSP}.
 */
export function registerPageHeaders(app: FastifyInstance): void {
  // A callback hook: an async one costs every answer a promise and a turn of the microtask queue.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', PAGE_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', REFERRER_POLICY);
    reply.header('x-frame-options', 'DENY');
    done(null, payload);
  });
}
