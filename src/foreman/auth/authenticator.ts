import type { Logger } from 'pino';
import {
  CrowdComputeError, helloSigningText, parseCredential, type Hello,
} from '../../protocol/index.ts';
import { withinSkew, type Principal } from '../../core/access.ts';
import type { CredentialRecord, Store } from '../../store/store.ts';
import { isStoreOutage } from '../../store/store-errors.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { Service } from '../shared/service.ts';
import type { CredentialService } from './credential-service.ts';
import { FailureLimiter } from './failure-limiter.ts';
import { hashKeySecret, safeEqual, sign } from './secrets.ts';

/** How strict the authenticator is. */
export interface AuthenticatorOptions {
  /** Largest clock difference accepted in a worker's signed hello. Default 60 s. */
  skewMs: number;
  /** How long a dashboard session lasts. Default 12 h. */
  sessionTtlMs: number;
  /**
   * Failed attempts one client address, or one credential id, may make in a burst; then one
   * more per `failureRefillMs`. Past that, failed checks are answered 429; valid credentials
   * are accepted all the same.
   */
  failureBurst: number;
  failureRefillMs: number;
  /** How often the store is asked whether credentials changed. Default 1 s. */
  pollIntervalMs: number;
}

/** A principal, and how it was recognised. */
export interface Authenticated {
  principal: Principal;
  via: 'bearer' | 'session' | 'none';
  /** The raw session cookie, when `via` is 'session' (to check the CSRF token against). */
  session?: string;
}

const SESSION_COOKIE = 'cc_session';
const CSRF_COOKIE = 'cc_csrf';
const NOT_VALID = 'the API key is not valid (unknown, wrong or revoked)';

/** Cookies of a `Cookie` header. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), decodeURIComponent(part.slice(i + 1).trim()));
  }
  return out;
}

/**
 * Who is asking, for every request and connection of a secured foreman: API keys (bearer or
 * dashboard session) and workers' signed hellos. It caches key records, learns of new and
 * revoked credentials by watching the store's credentials version (and PostgreSQL's
 * notifications), tells the foreman which credentials were revoked so their connections are
 * cut, limits failed attempts per client address and per credential id (never refusing a valid
 * credential), and writes the audit lines.
 */
export class Authenticator implements Service {
  readonly name = 'authenticator';
  private readonly store: Store;
  private readonly credentials: CredentialService;
  private readonly secret: string;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly options: AuthenticatorOptions;
  private readonly onRevoked: (ids: ReadonlySet<string>) => void;
  private readonly records = new Map<string, CredentialRecord | null>();
  private readonly nonces = new Map<string, number>();
  private readonly failures: FailureLimiter;
  private revoked = new Set<string>();
  private known: Set<string> | null = null;
  private version = -1;
  private timer: ReturnType<typeof setInterval> | null = null;
  private checking: Promise<void> | null = null;

  constructor(deps: { store: Store; credentials: CredentialService; secret: string; metrics: ForemanMetrics; log: Logger; onRevoked: (ids: ReadonlySet<string>) => void }, options: AuthenticatorOptions) {
    this.store = deps.store;
    this.credentials = deps.credentials;
    this.secret = deps.secret;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.onRevoked = deps.onRevoked;
    this.options = options;
    this.failures = new FailureLimiter({ burst: options.failureBurst, refillMs: options.failureRefillMs });
  }

  async start(): Promise<void> {
    if (this.timer) return;
    await this.checkChanges();
    this.timer = setInterval(() => void this.checkChanges(), this.options.pollIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.checking;
  }

  /** Credentials changed (another process created or revoked one): forget cached records, cut the revoked. */
  checkChanges(): Promise<void> {
    this.checking ??= (async () => {
      try {
        const version = await this.store.credentialsVersion();
        if (version === this.version) return;
        this.version = version;
        this.records.clear();
        const all = await this.store.credentialList({});
        // Creations made elsewhere (the CLI, another foreman) are security events too; at the
        // first look, everything is simply known.
        const first = this.known === null;
        for (const c of all) {
          if (!first && !this.known!.has(c.id)) this.audit('credential_created', { credentialId: c.id, kind: c.kind, name: c.name, ...(c.kind === 'key' ? { scopes: c.scopes } : { workerId: c.workerId }) });
        }
        this.known = new Set(all.map((c) => c.id));
        const revoked = new Set(all.filter((c) => c.revokedAt !== null).map((c) => c.id));
        const fresh = first ? new Set<string>() : new Set([...revoked].filter((id) => !this.revoked.has(id)));
        this.revoked = revoked;
        if (fresh.size > 0) {
          for (const id of fresh) this.audit('credential_revoked', { credentialId: id });
          this.onRevoked(fresh);
        }
      } catch (err) {
        this.log[isStoreOutage(err) ? 'debug' : 'warn']({ err }, 'could not check for changed credentials; trying again shortly');
      } finally {
        this.checking = null;
      }
    })();
    return this.checking;
  }

  /** Log a security event and count it. */
  audit(event: string, fields: Record<string, unknown>): void {
    this.metrics.securityEvents.inc({ event });
    this.log.info({ audit: event, ...fields }, `security: ${event.replaceAll('_', ' ')}`);
  }

  private refuse(reason: string, address: string, message: string, fields: Record<string, unknown> = {}): never {
    this.metrics.authRefusals.inc({ reason });
    this.audit('refused', { reason, address, ...fields });
    throw new CrowdComputeError('CC_ERR_UNAUTHORIZED', message);
  }

  /**
   * A check failed: count it against the client's address and, when one was named, the
   * credential id it tried; refuse with 429 when either was already over its budget, else 401.
   * A failure is refused, never a credential: nothing here runs before a check.
   */
  private failed(reason: string, address: string, message: string, fields: Record<string, unknown> = {}, credentialId?: string): never {
    const over = this.failures.fail([`address ${address}`, ...(credentialId ? [`credential ${credentialId}`] : [])]);
    if (over) {
      this.metrics.authRefusals.inc({ reason: 'rate_limited' });
      const whose = over.startsWith('address ') ? `from ${address}` : `with credential ${credentialId}`;
      throw new CrowdComputeError('CC_ERR_RATE_LIMITED', `too many failed attempts ${whose} (over ${this.options.failureBurst} a minute, --max-auth-failures-per-minute), and this one failed too: ${message}. `
        + 'Failed attempts are refused with 429 until a minute has passed; a valid credential is still accepted');
    }
    return this.refuse(reason, address, message, fields);
  }

  private async record(id: string): Promise<CredentialRecord | null> {
    if (this.records.has(id)) return this.records.get(id)!;
    const r = await this.store.credentialGet(id);
    if (this.records.size > 10_000) this.records.clear();
    this.records.set(id, r);
    return r;
  }

  /** Note a credential's use; a use from another address than last time is a security event. */
  private used(record: CredentialRecord, address: string): void {
    const now = Date.now();
    if (record.lastUsedFrom === address && record.lastUsedAt !== null && now - record.lastUsedAt < 60_000) return;
    if (record.lastUsedFrom !== address) this.audit('credential_used_from_new_address', { credentialId: record.id, kind: record.kind, address, previous: record.lastUsedFrom });
    record.lastUsedFrom = address;
    record.lastUsedAt = now;
    void this.store.credentialTouch({ id: record.id, now, from: address }).catch((err: unknown) => this.log.warn({ err }, 'could not note a credential\'s use'));
  }

  /** An API key's text to its principal; refuses unknown, wrong and revoked keys alike. */
  async key(text: string, address: string): Promise<Principal> {
    const parts = parseCredential(text);
    return this.checkKey(parts, parts?.kind === 'key' ? await this.record(parts.id) : null, address);
  }

  /**
   * The same, without waiting when the key's record is cached (every request after a key's
   * first, until credentials change): an HTTP request is then authenticated in the turn it
   * arrived in. The check itself is the same either way: the secret's hash against the record's.
   */
  private keyNow(text: string, address: string): Principal | Promise<Principal> {
    const parts = parseCredential(text);
    if (parts?.kind === 'key' && !this.records.has(parts.id)) return this.key(text, address);
    return this.checkKey(parts, parts?.kind === 'key' ? this.records.get(parts.id)! : null, address);
  }

  private checkKey(parts: ReturnType<typeof parseCredential>, record: CredentialRecord | null, address: string): Principal {
    // Hash even when there is nothing to compare with, so that timing says nothing of which keys exist.
    const hash = hashKeySecret(parts?.secret ?? '');
    if (!record || record.kind !== 'key' || record.revokedAt !== null || !record.secretHash || !safeEqual(record.secretHash, hash)) {
      this.failed('bad_key', address, NOT_VALID, { credentialId: parts?.id }, parts?.id);
    }
    this.used(record, address);
    return { kind: 'key', keyId: record.id, name: record.name, scopes: record.scopes };
  }

  /**
   * The principal of an HTTP request or WebSocket upgrade: a bearer key, else a dashboard
   * session, else anonymous. A bearer key whose record is cached is answered at once (not a
   * promise); a refusal is thrown.
   */
  fromHttp(p: { authorization?: string | undefined; cookie?: string | undefined; address: string }): Authenticated | Promise<Authenticated> {
    if (p.authorization) {
      const m = /^Bearer\s+(\S+)$/i.exec(p.authorization.trim());
      if (!m) this.failed('bad_header', p.address, 'the Authorization header must be "Bearer <API key>"');
      const principal = this.keyNow(m[1], p.address);
      return principal instanceof Promise ? principal.then((q) => ({ principal: q, via: 'bearer' as const })) : { principal, via: 'bearer' };
    }
    return this.fromSession(p.cookie);
  }

  private async fromSession(cookie: string | undefined): Promise<Authenticated> {
    const session = parseCookies(cookie).get(SESSION_COOKIE);
    if (session) {
      const keyId = this.sessionKey(session);
      const record = keyId ? await this.record(keyId) : null;
      if (record && record.kind === 'key' && record.revokedAt === null) {
        return { principal: { kind: 'key', keyId: record.id, name: record.name, scopes: record.scopes }, via: 'session', session };
      }
    }
    return { principal: { kind: 'anonymous' }, via: 'none' };
  }

  /**
   * A worker's hello, checked: a live token for this worker id, a fresh timestamp, a nonce
   * not seen before, and an HMAC over what it signed that only the token's holder can make.
   */
  async worker(hello: Hello, p: { host: string; address: string }): Promise<Principal> {
    const fail = (reason: string, message: string): never =>
      this.failed(reason, p.address, `worker ${hello.workerId}: ${message}`, { workerId: hello.workerId, credentialId: hello.auth?.tokenId }, hello.auth?.tokenId);
    const auth = hello.auth;
    if (!auth) return fail('no_token', 'no credential; start it with a worker token (--token or CROWDCOMPUTE_WORKER_TOKEN)');
    const now = Date.now();
    if (!withinSkew(auth.timestamp, now, this.options.skewMs)) {
      return fail('stale_signature', `its signature is ${Math.round((now - auth.timestamp) / 1000)} s off this foreman's clock (at most ${this.options.skewMs / 1000} s); check the clocks`);
    }
    const record = await this.record(auth.tokenId);
    const expected = sign(this.credentials.tokenSecret(auth.tokenId), helloSigningText({ workerId: hello.workerId, tokenId: auth.tokenId, timestamp: auth.timestamp, nonce: auth.nonce, host: p.host }));
    if (!record || (record.kind !== 'token' && record.kind !== 'join') || record.revokedAt !== null || !safeEqual(expected, auth.signature)) {
      return fail('bad_token', record?.kind === 'join' ? 'the join link is not valid (revoked, or not this foreman\'s)' : 'the worker token is not valid (unknown, wrong or revoked)');
    }
    if (record.expiresAt !== null && record.expiresAt <= now) {
      return fail('expired', `the join link expired at ${new Date(record.expiresAt).toISOString()}; ask for a new one`);
    }
    if (record.workerId !== '*' && record.workerId !== hello.workerId) {
      return fail('wrong_worker', `the worker token is for worker ${record.workerId}`);
    }
    this.pruneNonces(now);
    if (this.nonces.has(auth.nonce)) return fail('replayed', 'this hello was already used (replayed)');
    this.nonces.set(auth.nonce, auth.timestamp + this.options.skewMs);
    this.used(record, p.address);
    return { kind: 'worker', tokenId: record.id, workerId: hello.workerId, ...(record.kind === 'join' ? { join: { maxWorkers: record.maxWorkers } } : {}) };
  }

  private pruneNonces(now: number): void {
    if (this.nonces.size < 1000) return;
    for (const [nonce, until] of this.nonces) if (until < now) this.nonces.delete(nonce);
  }

  // ------------------------------------------------------------------ file links

  /** The signature of a task's download link for a file, until `expires`. */
  signFile(fileId: string, expires: number): string {
    return sign(this.secret, `file\n${fileId}\n${expires}`);
  }

  /** True when a download link's signature is this foreman's. */
  verifyFile(fileId: string, expires: number, signature: string): boolean {
    return safeEqual(signature, this.signFile(fileId, expires));
  }

  // ------------------------------------------------------------------ dashboard sessions

  /** A session for a key that logged in: the cookies to set. */
  issueSession(keyId: string): { cookies: string[]; csrf: string } {
    const expires = Date.now() + this.options.sessionTtlMs;
    const value = `${keyId}.${expires}.${sign(this.secret, `session\n${keyId}\n${expires}`)}`;
    const csrf = this.csrfFor(value);
    const maxAge = Math.floor(this.options.sessionTtlMs / 1000);
    return {
      csrf,
      cookies: [
        `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`,
        // Readable by the page's script, which echoes it in x-csrf-token on every change it asks for.
        `${CSRF_COOKIE}=${csrf}; Path=/; SameSite=Strict; Max-Age=${maxAge}`,
      ],
    };
  }

  /** Cookies that end a session. */
  static clearSession(): string[] {
    return [`${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`, `${CSRF_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0`];
  }

  private sessionKey(value: string): string | null {
    const [keyId, expires, sig] = value.split('.');
    if (!keyId || !expires || !sig || Number(expires) < Date.now()) return null;
    return safeEqual(sig, sign(this.secret, `session\n${keyId}\n${expires}`)) ? keyId : null;
  }

  private csrfFor(session: string): string {
    return sign(this.secret, `csrf\n${session}`);
  }

  /** True when a change asked through a session carries the session's CSRF token. */
  checkCsrf(session: string, header: string | undefined): boolean {
    return typeof header === 'string' && safeEqual(header, this.csrfFor(session));
  }
}
