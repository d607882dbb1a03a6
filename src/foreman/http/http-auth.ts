import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CrowdComputeError, type Scope } from '../../protocol/index.ts';
import { requireScope, unauthenticated, type Principal } from '../../core/access.ts';
import { Authenticator, type Authenticated } from '../auth/authenticator.ts';

/**
 * What a route asks of its caller: nothing (`open`); a login, or a redirect to the login page
 * (`page`); any valid API key (`authenticated`, the route itself checks ownership); or a scope.
 */
export type Access = 'open' | 'page' | 'authenticated' | Scope | 'link';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request (set before every handler). */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** What the route asks of its caller; default `authenticated`. */
    access?: Access;
  }
}

const INSECURE: Principal = { kind: 'insecure' };
const ANONYMOUS: Principal = { kind: 'anonymous' };
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Authenticate every request before its handler: a bearer API key or a dashboard session,
 * checked against the route's `access`. Changes asked through a session must carry its CSRF
 * token. Without an authenticator (--insecure) every request may do everything.
 * Call before registering routes (plugin routes under /docs and /ui/ are made open).
 */
export function registerHttpAuth(app: FastifyInstance, auth: Authenticator | null): void {
  app.decorateRequest('principal', null as never);
  app.addHook('onRoute', (route) => {
    // The API docs and the pages' static files hold nothing secret.
    if (route.url.startsWith('/docs') || route.url.startsWith('/ui/')) route.config = { ...route.config, access: 'open' };
  });
  // A callback hook, not an async one: a request whose key's record is cached (all but a key's
  // first) is decided in this turn, without a promise to wait on.
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (!auth) { req.principal = INSECURE; done(); return; }
    const access: Access = req.routeOptions.config?.access ?? 'authenticated';
    if (access === 'open') { req.principal = ANONYMOUS; done(); return; }
    // A signed link (a task's file download) is checked by its route; without one, a key is needed.
    if (access === 'link' && typeof (req.query as { sig?: unknown } | undefined)?.sig === 'string') { req.principal = ANONYMOUS; done(); return; }
    let who: Authenticated | Promise<Authenticated>;
    try {
      who = auth.fromHttp({ authorization: req.headers.authorization, cookie: req.headers.cookie, address: req.ip });
    } catch (err) {
      done(err as Error);
      return;
    }
    if (who instanceof Promise) who.then((w) => admit(auth, req, reply, access, w, done), done);
    else admit(auth, req, reply, access, who, done);
  });
}

/** Let a recognised caller through to the route (`done()`), or refuse it (`done(err)`), or send an anonymous page visitor to the login page. */
function admit(auth: Authenticator, req: FastifyRequest, reply: FastifyReply, access: Exclude<Access, 'open'>, who: Authenticated, done: (err?: Error) => void): void {
  req.principal = who.principal;
  try {
    if (who.principal.kind === 'anonymous') {
      // Answered here: the route does not run (done is not called).
      if (access === 'page') { void reply.redirect(`/login?next=${encodeURIComponent(pathOf(req.url))}`); return; }
      throw unauthenticated();
    }
    if (who.via === 'session' && !SAFE_METHODS.has(req.method) && !auth.checkCsrf(who.session!, req.headers['x-csrf-token'] as string | undefined)) {
      throw new CrowdComputeError('CC_ERR_FORBIDDEN', 'a change asked through a dashboard session must carry its CSRF token (x-csrf-token header)');
    }
    if (access !== 'authenticated' && access !== 'page' && access !== 'link') requireScope(who.principal, access, `${req.method} ${req.routeOptions.url}`);
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}

/**
 * The path and query of a request's target, for the login page's `next`. A request line may
 * carry a whole URL (`GET http://elsewhere/ HTTP/1.1`); only its path is kept, and one that a
 * browser would read as another site (`//host`) becomes `/`.
 */
function pathOf(target: string): string {
  let url: URL;
  try { url = new URL(target, 'http://foreman.invalid'); } catch { return '/'; }
  const path = `${url.pathname}${url.search}`;
  return path.startsWith('//') || path.includes('\\') ? '/' : path;
}

/** The login form; its style and script are files under ui/ (the pages' policy allows no inline ones). */
const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CrowdCompute: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/login.css">
<script type="module" src="/ui/login.js"></script>
</head><body>
<form id="login"><h1>CrowdCompute</h1>
<p>Log in with an API key.</p>
<p id="where-key">On the foreman's machine, its admin key is <code>apiKey</code> in the local credentials file:
<code>credentials.json</code> in <code>$CROWDCOMPUTE_CONFIG_DIR</code>, by default <code>~/.config/crowdcompute/</code>
(the foreman prints the file's path when it starts). This prints the key of the foreman started last:</p>
<pre><code id="print-key">grep -m1 -o '"cck_[^"]*' "\${CROWDCOMPUTE_CONFIG_DIR:-\${XDG_CONFIG_HOME:-$HOME/.config}/crowdcompute}/credentials.json" | tr -d '"'</code></pre>
<p><code>crowdcompute key create --scopes read</code> makes a key to share that can only read
(<code>npx crowdcompute</code> where the package is installed, <code>bin/crowdcompute.js</code> in a checkout).</p>
<input id="key" type="password" autocomplete="current-password" placeholder="cck_…" required aria-label="API key">
<button type="submit">Log in</button><p id="error" role="alert"></p></form>
</body></html>`;

/** GET /login (a form), POST /login (a key in, a session cookie out), POST /logout. */
export function registerLogin(app: FastifyInstance, auth: Authenticator | null): void {
  app.get('/login', { schema: { hide: true }, config: { access: 'open' } }, async (_req, reply) => {
    reply.type('text/html; charset=utf-8');
    return LOGIN_PAGE;
  });
  app.post('/login', { schema: { hide: true }, config: { access: 'open' } }, async (req, reply) => {
    if (!auth) return { ok: true };
    const key = (req.body as { key?: unknown } | null)?.key;
    if (typeof key !== 'string') throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', 'send {"key": "<API key>"}');
    const principal = await auth.key(key, req.ip);
    if (principal.kind !== 'key') throw unauthenticated();
    const session = auth.issueSession(principal.keyId);
    reply.header('set-cookie', session.cookies);
    auth.audit('dashboard_login', { keyId: principal.keyId, address: req.ip });
    return { ok: true };
  });
  app.post('/logout', { schema: { hide: true }, config: { access: 'open' } }, async (_req, reply) => {
    reply.header('set-cookie', Authenticator.clearSession());
    return { ok: true };
  });
}
