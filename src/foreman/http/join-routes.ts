import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  CrowdComputeError, IdParamsSchema, JoinLinkCreateSchema, JoinLinkViewSchema, joinUrl, type JoinLinkView,
} from '../../protocol/index.ts';
import { z } from 'zod';
import { pageShell } from '../../host/ui-assets.ts';
import { JOIN_PAGE_CSP } from '../../host/page-headers.ts';
import { PYODIDE_PATH, registerPyodideAssets } from '../../host/pyodide-assets.ts';
import type { CredentialRecord } from '../../store/store.ts';
import type { CredentialService } from '../auth/credential-service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { routeSchema } from './openapi.ts';
import { parseRequest } from './rest-inputs.ts';

/** A join link works a day, for a hundred browsers at once, unless its maker says otherwise. */
export const JOIN_LINK_DEFAULTS = { expiresInMs: 86_400_000, maxWorkers: 100 } as const;

// Where the tab loads Pyodide from when a Python map task comes.
const PYODIDE_META = `\n<meta name="crowdcompute-pyodide" content="${PYODIDE_PATH}">`;
const PAGE = pageShell('Lend this browser · CrowdCompute', '/ui/join.js', PYODIDE_META);
// With authentication off, the page joins without a link, and needs to know that it may.
const OPEN_PAGE = pageShell('Lend this browser · CrowdCompute', '/ui/join.js', `${PYODIDE_META}\n<meta name="crowdcompute-auth" content="off">`);

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * GET /join, the page that makes a browser tab a worker, and the join links that admit tabs:
 * create (admin; the link and its secret are shown once), list, revoke. Under --insecure any
 * tab may join, and the link is the page's address.
 */
export function registerJoinRoutes(app: FastifyInstance, deps: { credentials: CredentialService | null; registry: WorkerRegistry; audit: (event: string, fields: Record<string, unknown>) => void }): void {
  registerPyodideAssets(app);
  // The page holds nothing secret; what lets a tab in is the credential in the link.
  app.get('/join', { schema: { hide: true }, config: { access: 'open' } }, async (_req, reply) => {
    reply.type('text/html; charset=utf-8');
    reply.header('cache-control', 'no-store');
    // The one page whose policy lets shipped functions run (see JOIN_PAGE_CSP).
    reply.header('content-security-policy', JOIN_PAGE_CSP);
    return deps.credentials ? PAGE : OPEN_PAGE;
  });

  const view = (r: CredentialRecord, url: string | null): JoinLinkView => ({
    id: r.id, name: r.name, url, expires_at: iso(r.expiresAt), max_workers: r.maxWorkers,
    connected: deps.registry.connectedWith(r.id), created_at: new Date(r.createdAt).toISOString(), revoked_at: iso(r.revokedAt),
  });
  const origin = (req: FastifyRequest) => `${req.protocol}://${req.host}`;

  app.post('/api/join-links', {
    config: { access: 'admin' },
    schema: routeSchema({
      operationId: 'createJoinLink', tags: ['workers'], summary: 'A join link: opened in a browser, it makes the tab a worker for map jobs (the link is shown once)',
      body: JoinLinkCreateSchema, response: { 201: JoinLinkViewSchema }, errors: [400, 401, 403],
    }),
  }, async (req, reply): Promise<JoinLinkView> => {
    const body = parseRequest(JoinLinkCreateSchema, req.body ?? {}, 'body');
    reply.status(201);
    if (!deps.credentials) {
      const now = Date.now();
      return { id: 'open', name: 'authentication is off: any tab may join', url: joinUrl(origin(req), null), expires_at: null, max_workers: null, connected: 0, created_at: new Date(now).toISOString(), revoked_at: null };
    }
    // One clock reading for the expiry and its check: a link of a few milliseconds is still made.
    const now = Date.now();
    const issued = await deps.credentials.createJoinLink({
      name: body.name ?? null, expiresAt: now + (body.expires_in_ms ?? JOIN_LINK_DEFAULTS.expiresInMs), maxWorkers: body.max_workers ?? JOIN_LINK_DEFAULTS.maxWorkers, now,
    });
    deps.audit('credential_created', { credentialId: issued.record.id, kind: 'join', keyId: req.principal.kind === 'key' ? req.principal.keyId : null });
    return view(issued.record, joinUrl(origin(req), issued.text));
  });

  app.get('/api/join-links', {
    config: { access: 'admin' },
    schema: routeSchema({ operationId: 'listJoinLinks', tags: ['workers'], summary: 'Join links, newest first, with the browsers each has connected here now', response: { 200: z.array(JoinLinkViewSchema) }, errors: [401, 403] }),
  }, async (): Promise<JoinLinkView[]> => (deps.credentials ? (await deps.credentials.list('join')).map((r) => view(r, null)) : []));

  app.post('/api/join-links/:id/revoke', {
    config: { access: 'admin' },
    schema: routeSchema({ operationId: 'revokeJoinLink', tags: ['workers'], summary: 'Revoke a join link: no tab may join with it, and the tabs connected with it are cut off', params: IdParamsSchema, response: { 200: JoinLinkViewSchema }, errors: [400, 401, 403] }),
  }, async (req): Promise<JoinLinkView> => {
    if (!deps.credentials) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', 'authentication is off: there are no join links to revoke');
    const id = parseRequest(IdParamsSchema, req.params, 'path').id;
    const record = (await deps.credentials.list('join')).find((r) => r.id === id);
    if (!record) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `no join link has the id ${id}`);
    const revoked = await deps.credentials.revoke(id);
    deps.audit('credential_revoked', { credentialId: id, kind: 'join' });
    return view(revoked, null);
  });
}
