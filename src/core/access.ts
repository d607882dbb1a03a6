/**
 * Who may do what, decided without I/O. The foreman authenticates a request or a connection
 * into a {@link Principal}; these rules say what that principal may do.
 */
import { CrowdComputeError, type JobKind, type Scope } from '../protocol/index.ts';

/** Who is asking. */
export type Principal =
  | { kind: 'anonymous' }
  /** The foreman runs with --insecure: everything is allowed, and nobody owns jobs. */
  | { kind: 'insecure' }
  /** An API key, sent as a bearer token or through a dashboard session. */
  | { kind: 'key'; keyId: string; name: string | null; scopes: readonly Scope[] }
  /**
   * A worker that proved its token in its hello; `join` when the token is a join link's (a
   * browser tab: map tasks only, with the link's cap on browsers at once).
   */
  | { kind: 'worker'; tokenId: string; workerId: string; join?: { maxWorkers: number | null } };

/** True when the principal holds `scope` (admin holds every scope; --insecure allows everything). */
export function hasScope(p: Principal, scope: Scope): boolean {
  if (p.kind === 'insecure') return true;
  if (p.kind !== 'key') return false;
  return p.scopes.includes('admin') || p.scopes.includes(scope);
}

/** The scope a submission needs: shipping code is a right of its own. */
export function submissionScope(kind: JobKind): Scope {
  return kind === 'map' ? 'submit:code' : 'submit';
}

/** True when the principal may submit anything at all (it can cancel its own jobs). */
export function maySubmit(p: Principal): boolean {
  return hasScope(p, 'submit') || hasScope(p, 'submit:code');
}

/** Who owns a job the principal submits (null: nobody, under --insecure). */
export function ownerOf(p: Principal): string | null {
  return p.kind === 'key' ? p.keyId : null;
}

/**
 * True when the principal may see (and, with a submit scope, cancel) a job of `owner`: its
 * own, or any with admin or under --insecure. Other jobs are reported as not found, so that
 * a key cannot learn which job ids exist.
 */
export function mayAccessJob(p: Principal, owner: string | null): boolean {
  if (p.kind === 'insecure') return true;
  if (p.kind !== 'key') return false;
  return p.scopes.includes('admin') || (owner !== null && owner === p.keyId);
}

/**
 * True when the principal sees every owner's jobs, tasks and keys in listings, statistics and
 * worker views (admin, or --insecure). Any other key sees its own in full and the rest only
 * as counts and totals, without ids.
 */
export function seesEveryOwner(p: Principal): boolean {
  return p.kind === 'insecure' || (p.kind === 'key' && p.scopes.includes('admin'));
}

/** Only what `admin` may list across owners; everyone else sees their own. */
export function listingOwner(p: Principal): string | null | undefined {
  if (seesEveryOwner(p)) return undefined;
  return p.kind === 'key' ? p.keyId : null;
}

/** Reject a timestamp further than `windowMs` from `now` either way (clock skew, replayed hellos). */
export function withinSkew(timestamp: number, now: number, windowMs: number): boolean {
  return Math.abs(now - timestamp) <= windowMs;
}

/** The error of a request or message with no credential at all. */
export function unauthenticated(): CrowdComputeError {
  return new CrowdComputeError('CC_ERR_UNAUTHORIZED', 'this request needs an API key: send "Authorization: Bearer <key>" (the CLI: --api-key or CROWDCOMPUTE_API_KEY)');
}

/** Refuse a principal that lacks `scope` (401 without a credential, 403 with one), naming what is missing. */
export function requireScope(p: Principal, scope: Scope, what: string): void {
  if (hasScope(p, scope)) return;
  if (p.kind === 'anonymous') throw unauthenticated();
  const has = p.kind === 'key' ? p.scopes.join(', ') || 'none' : `a ${p.kind} credential`;
  throw new CrowdComputeError('CC_ERR_FORBIDDEN', `${what} needs the "${scope}" scope; this credential has: ${has}`, { scope });
}
