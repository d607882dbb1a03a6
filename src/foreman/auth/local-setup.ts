import { hostname } from 'node:os';
import type { LocalCredentials } from '../../host/local-credentials.ts';
import type { CredentialService } from './credential-service.ts';

/**
 * The credentials a foreman leaves for its own machine: an admin API key (for the CLI and
 * local clients) and a worker token for any worker id (for local workers). Those already in
 * the local credentials file are kept while the store still honours them; otherwise new ones
 * are issued. Everything issued is logged as a security event.
 */
export async function ensureLocalCredentials(credentials: CredentialService, local: LocalCredentials | undefined,
  audit: (event: string, fields: Record<string, unknown>) => void): Promise<{ apiKey: string; workerToken: string }> {
  let apiKey = local?.apiKey && (await credentials.verifyKey(local.apiKey)) ? local.apiKey : undefined;
  if (!apiKey) {
    const issued = await credentials.createKey({ scopes: ['admin'], name: `local admin on ${hostname()}` });
    apiKey = issued.text;
    audit('credential_created', { credentialId: issued.record.id, kind: 'key', scopes: issued.record.scopes, name: issued.record.name });
  }
  let workerToken = local?.workerToken && (await credentials.verifyToken(local.workerToken)) ? local.workerToken : undefined;
  if (!workerToken) {
    const issued = await credentials.createToken({ workerId: '*', name: `local workers on ${hostname()}` });
    workerToken = issued.text;
    audit('credential_created', { credentialId: issued.record.id, kind: 'token', workerId: '*', name: issued.record.name });
  }
  return { apiKey, workerToken };
}
