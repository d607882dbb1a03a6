import { API_KEY_PREFIX, CrowdComputeError, JOB_LIMITS, SCOPES, WORKER_TOKEN_PREFIX, boundProblem, parseCredential, webhookUrlProblem, type Scope } from '../../protocol/index.ts';
import type { CredentialRecord, Store } from '../../store/store.ts';
import { hashKeySecret, newCredentialId, newKeySecret, safeEqual, secretFingerprint, workerTokenSecret } from './secrets.ts';

/** A key's cap on its jobs' running tasks is in the range a job's is. */
function checkKeyCap(maxConcurrency: number): void {
  const problem = boundProblem(maxConcurrency, JOB_LIMITS.maxConcurrency);
  if (problem) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `an API key's maxConcurrency (--max-concurrency) ${problem}`);
}

/** A key's default webhook is checked as a job's is. */
function checkKeyWebhook(url: string): void {
  const problem = webhookUrlProblem(url);
  if (problem) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `an API key's webhook (--webhook) ${problem}`);
}

/** Which database a secret is checked against, and where the secret came from. */
export interface SecretContext {
  /** The database as the local credentials file names it (`sqlite:/abs/file.db`, `postgres://…` without password). */
  database?: string | null;
  /** `given`: CROWDCOMPUTE_SECRET or --secret-file; `saved`: the local credentials file's entry; `new`: none was found, one was made. */
  source?: 'given' | 'saved' | 'new';
  /** The local credentials file's path. */
  credentialsFile?: string;
}

/**
 * The refusal of a secret a database was not set up with: which secret, and the two ways
 * forward (the secret it was set up with, or a fresh database).
 */
export function secretMismatch(c: SecretContext): string {
  const db = c.database ? `the database ${c.database}` : 'this database';
  const file = c.credentialsFile ? ` ${c.credentialsFile}` : '';
  const which = c.source === 'given' ? 'the secret given (CROWDCOMPUTE_SECRET or --secret-file)'
    : c.source === 'saved' ? `the secret saved for it in the local credentials file${file}`
      : c.source === 'new' ? `a new secret (the local credentials file${file} has none for it: another user, another CROWDCOMPUTE_CONFIG_DIR, or a removed file)`
        : 'the secret given (CROWDCOMPUTE_SECRET, --secret-file or the local credentials file)';
  const sqlite = c.database?.startsWith('sqlite:') ? c.database.slice('sqlite:'.length) : null;
  const fresh = sqlite ? `choose another --database, or delete ${sqlite} (its jobs, keys and tokens go with it)` : 'choose another --database (or schema)';
  return `${db} was set up with another secret than ${which}; every foreman of one database needs the same secret: `
    + 'give the one it was set up with (CROWDCOMPUTE_SECRET or --secret-file; the first foreman on it saved it in its local credentials file), '
    + `or start afresh: ${fresh}`;
}

/** A credential just made: its record, and its text, shown once and stored nowhere. */
export interface IssuedCredential {
  record: CredentialRecord;
  /** `cck_<id>_<secret>` or `cct_<id>_<secret>`. */
  text: string;
}

/**
 * Creating, listing, revoking and checking API keys and worker tokens against a store. The
 * CLI uses it with no foreman running; the foreman uses it on first start (its local admin
 * key) and to check what peers present.
 */
export class CredentialService {
  private readonly store: Store;
  private readonly secret: string | null;

  /** `secret`: the deployment's secret; API keys do not need it, worker tokens do. */
  constructor(store: Store, secret: string | null) {
    this.store = store;
    this.secret = secret;
  }

  private requireSecret(): string {
    if (this.secret === null) throw new Error('worker tokens need the deployment\'s secret (CROWDCOMPUTE_SECRET, --secret-file, or the local credentials file of a foreman on this database)');
    return this.secret;
  }

  /** The deployment's secret (for what is derived from it, such as the webhook signing secret); an error without one. */
  deploymentSecret(): string {
    return this.requireSecret();
  }

  /**
   * Tie the store to this secret on first use, and refuse a secret that is not the one the
   * store was set up with (its workers' tokens would all fail). `context` says which database
   * it is and where the secret came from, so that the refusal can name the way forward.
   */
  async checkSecret(context: SecretContext = {}): Promise<void> {
    const mine = secretFingerprint(this.requireSecret());
    const stored = await this.store.metaSetIfAbsent({ key: 'secret_fingerprint', value: mine });
    if (stored !== mine) throw new Error(secretMismatch(context));
  }

  /** A new API key with these scopes. */
  async createKey(params: { scopes: readonly string[]; name?: string | null; now?: number; maxConcurrency?: number; webhookUrl?: string }): Promise<IssuedCredential> {
    const scopes = [...new Set(params.scopes)];
    const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (scopes.length === 0 || unknown.length > 0) {
      throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `scopes must be some of ${SCOPES.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
    }
    if (params.maxConcurrency !== undefined) checkKeyCap(params.maxConcurrency);
    if (params.webhookUrl !== undefined) checkKeyWebhook(params.webhookUrl);
    const id = newCredentialId();
    const secret = newKeySecret();
    await this.store.credentialInsert({ id, kind: 'key', name: params.name ?? null, scopes: scopes as Scope[], workerId: null, secretHash: hashKeySecret(secret), createdAt: params.now ?? Date.now(),
      ...(params.maxConcurrency !== undefined ? { maxConcurrency: params.maxConcurrency } : {}), ...(params.webhookUrl !== undefined ? { webhookUrl: params.webhookUrl } : {}) });
    return { record: (await this.store.credentialGet(id))!, text: `${API_KEY_PREFIX}${id}_${secret}` };
  }

  /** A new worker token for one worker id, or for any (`*`). */
  async createToken(params: { workerId: string; name?: string | null; now?: number }): Promise<IssuedCredential> {
    this.requireSecret();
    if (!params.workerId || params.workerId.length > 200) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', 'a worker token needs the worker id it is for (or * for any worker)');
    const id = newCredentialId();
    await this.store.credentialInsert({ id, kind: 'token', name: params.name ?? null, scopes: [], workerId: params.workerId, secretHash: null, createdAt: params.now ?? Date.now() });
    return { record: (await this.store.credentialGet(id))!, text: this.tokenText(id) };
  }

  /**
   * A join link's credential: a worker token that admits browser tabs only, for map tasks
   * only, until `expiresAt`, at most `maxWorkers` at once. Its text goes after `/join#` in the
   * link (a fragment: the browser does not send it in requests or to logs).
   */
  async createJoinLink(params: { name?: string | null; expiresAt?: number | null; maxWorkers?: number | null; now?: number }): Promise<IssuedCredential> {
    this.requireSecret();
    const now = params.now ?? Date.now();
    if (params.expiresAt != null && params.expiresAt <= now) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', 'a join link must expire in the future');
    if (params.maxWorkers != null && (!Number.isInteger(params.maxWorkers) || params.maxWorkers < 1)) {
      throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `a join link admits at least one browser; got ${params.maxWorkers}`);
    }
    const id = newCredentialId();
    await this.store.credentialInsert({ id, kind: 'join', name: params.name ?? null, scopes: [], workerId: '*', secretHash: null, createdAt: now,
      expiresAt: params.expiresAt ?? null, maxWorkers: params.maxWorkers ?? null });
    return { record: (await this.store.credentialGet(id))!, text: this.tokenText(id) };
  }

  /** The text of an existing worker token (derived, never stored). */
  tokenText(tokenId: string): string {
    return `${WORKER_TOKEN_PREFIX}${tokenId}_${workerTokenSecret(this.requireSecret(), tokenId)}`;
  }

  /** The HMAC key a worker holding this token signs with. */
  tokenSecret(tokenId: string): string {
    return workerTokenSecret(this.requireSecret(), tokenId);
  }

  /** Credentials of one kind or all, newest first. */
  list(kind?: CredentialRecord['kind']): Promise<CredentialRecord[]> {
    return this.store.credentialList(kind ? { kind } : {});
  }

  /** Revoke a credential; CC_ERR_BAD_MESSAGE if there is none with that id. */
  /** Set (or, with null, lift) an API key's cap on its jobs' running tasks; foremen apply it within a second. */
  async setMaxConcurrency(id: string, maxConcurrency: number | null): Promise<CredentialRecord> {
    if (maxConcurrency !== null) checkKeyCap(maxConcurrency);
    const r = await this.store.credentialSetMaxConcurrency({ id, maxConcurrency });
    if (!r) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `no API key has the id ${id}`);
    return r;
  }

  /** Set (or, with null, remove) an API key's default webhook: its jobs that name none and end from now on are posted there. */
  async setWebhook(id: string, webhookUrl: string | null): Promise<CredentialRecord> {
    if (webhookUrl !== null) checkKeyWebhook(webhookUrl);
    const r = await this.store.credentialSetWebhook({ id, webhookUrl });
    if (!r) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `no API key has the id ${id}`);
    return r;
  }

  async revoke(id: string, now = Date.now()): Promise<CredentialRecord> {
    const r = await this.store.credentialRevoke({ id, now });
    if (!r) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `no API key or worker token has the id ${id}`);
    return r;
  }

  /** The live key record an API key's text stands for, or null (unknown, wrong secret, revoked). */
  async verifyKey(text: string): Promise<CredentialRecord | null> {
    const parts = parseCredential(text);
    if (!parts || parts.kind !== 'key') return null;
    const record = await this.store.credentialGet(parts.id);
    if (!record || record.kind !== 'key' || record.revokedAt !== null || !record.secretHash) return null;
    return safeEqual(record.secretHash, hashKeySecret(parts.secret)) ? record : null;
  }

  /** True when this worker token's text is one this deployment issued and has not revoked. */
  async verifyToken(text: string): Promise<CredentialRecord | null> {
    const parts = parseCredential(text);
    if (!parts || parts.kind !== 'token') return null;
    const record = await this.store.credentialGet(parts.id);
    if (!record || (record.kind !== 'token' && record.kind !== 'join') || record.revokedAt !== null) return null;
    return safeEqual(parts.secret, this.tokenSecret(parts.id)) ? record : null;
  }
}
