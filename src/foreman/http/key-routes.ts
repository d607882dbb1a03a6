import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  CrowdComputeError, IdParamsSchema, KeyViewSchema, KeyWebhookBodySchema, webhookHostAllowed, type KeyView,
} from '../../protocol/index.ts';
import { seesEveryOwner, unauthenticated } from '../../core/access.ts';
import type { CredentialRecord, Store } from '../../store/store.ts';
import type { CredentialService } from '../auth/credential-service.ts';
import { routeSchema } from './openapi.ts';
import { parseRequest } from './rest-inputs.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** An API key as the REST API shows it: never its secret (the store holds only a hash). */
export function keyView(r: CredentialRecord): KeyView {
  return {
    id: r.id, name: r.name, scopes: [...r.scopes], max_concurrency: r.maxConcurrency, webhook_url: r.webhookUrl,
    created_at: new Date(r.createdAt).toISOString(), last_used_at: iso(r.lastUsedAt), last_used_from: r.lastUsedFrom, revoked_at: iso(r.revokedAt),
  };
}

/** What the key routes act through. */
export interface KeyRouteDeps {
  store: Store;
  /** Null under --insecure: there are no keys then. */
  credentials: CredentialService | null;
  /** The hosts webhooks may call (`--webhook-host`); empty: any. */
  webhookHosts: readonly string[];
  audit: (event: string, fields: Record<string, unknown>) => void;
}

/**
 * An API key's own settings over REST, so that they can be changed without access to the
 * database (`crowdcompute key webhook` works on the database directly): read a key, set or
 * remove its default webhook. A key may read and change its own: its default webhook is only
 * used for its own jobs, which could name that URL one by one anyway. Any other key's needs
 * the admin scope; to a key without it, every other id is refused alike, so it cannot tell
 * which ids exist.
 */
export function registerKeyRoutes(app: FastifyInstance, deps: KeyRouteDeps): void {
  /** The key the request names, once the caller may see it; the errors say why not. */
  const target = async (req: FastifyRequest): Promise<{ record: CredentialRecord; credentials: CredentialService }> => {
    const id = parseRequest(IdParamsSchema, req.params, 'path').id;
    const p = req.principal;
    if (p.kind === 'anonymous') throw unauthenticated();
    if (!deps.credentials) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', 'authentication is off (--insecure): there are no API keys');
    if (!seesEveryOwner(p) && !(p.kind === 'key' && p.keyId === id)) {
      throw new CrowdComputeError('CC_ERR_FORBIDDEN',
        `${req.method} ${req.routeOptions.url}: a key may read and change only itself (this one is ${p.kind === 'key' ? p.keyId : `a ${p.kind} credential`}); another key needs the "admin" scope`,
        { scope: 'admin' });
    }
    const record = await deps.store.credentialGet(id);
    if (!record || record.kind !== 'key') throw new CrowdComputeError('CC_ERR_KEY_NOT_FOUND', `no API key has the id ${id}: crowdcompute key list shows them`, { keyId: id });
    return { record, credentials: deps.credentials };
  };
  const changed = (req: FastifyRequest, r: CredentialRecord) => deps.audit('key_webhook_changed', {
    credentialId: r.id, webhookUrl: r.webhookUrl, by: req.principal.kind === 'key' ? req.principal.keyId : req.principal.kind, address: req.ip,
  });

  app.get('/api/keys/:id', {
    schema: routeSchema({
      operationId: 'getKey', tags: ['system'], summary: 'An API key: its scopes, cap, webhook and use, never its secret (the key itself, or any with the admin scope)',
      params: IdParamsSchema, response: { 200: KeyViewSchema }, errors: [400, 401, 403, 404],
    }),
  }, async (req): Promise<KeyView> => keyView((await target(req)).record));

  app.put('/api/keys/:id/webhook', {
    schema: routeSchema({
      operationId: 'setKeyWebhook', tags: ['system'], params: IdParamsSchema, body: KeyWebhookBodySchema, response: { 200: KeyViewSchema }, errors: [400, 401, 403, 404],
      summary: "Set an API key's webhook: the end of its jobs that name none, ending from now on, is posted there (the key itself, or any with the admin scope)",
    }),
  }, async (req): Promise<KeyView> => {
    const { record, credentials } = await target(req);
    const { url } = parseRequest(KeyWebhookBodySchema, req.body, 'body');
    if (!webhookHostAllowed(url, deps.webhookHosts)) {
      throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `webhook host ${new URL(url).hostname} is not one this foreman calls (--webhook-host ${deps.webhookHosts.join(', ')}); use one of those`,
        { field: 'url', hosts: [...deps.webhookHosts] });
    }
    const r = await credentials.setWebhook(record.id, url);
    changed(req, r);
    return keyView(r);
  });

  app.delete('/api/keys/:id/webhook', {
    schema: routeSchema({
      operationId: 'removeKeyWebhook', tags: ['system'], params: IdParamsSchema, response: { 200: KeyViewSchema }, errors: [400, 401, 403, 404],
      summary: "Remove an API key's webhook: the end of its jobs that name none is posted nowhere (the key itself, or any with the admin scope)",
    }),
  }, async (req): Promise<KeyView> => {
    const { record, credentials } = await target(req);
    const r = await credentials.setWebhook(record.id, null);
    changed(req, r);
    return keyView(r);
  });
}
