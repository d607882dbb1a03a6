/**
 * The words of access control: scopes, credential formats, and what a worker signs to prove
 * it holds its token. The checks themselves are in core/access.ts (who may do what) and in
 * the foreman (verifying); this file only says how things are written.
 */
import { z } from 'zod';

/**
 * What an API key may do. `read`: statistics, workers, metrics, the dashboard, and its own
 * jobs. `submit`: named tasks (and cancelling its own jobs). `submit:code`: map jobs, which
 * ship code to workers, a right of its own. `admin`: everything, every owner's jobs included.
 */
export const SCOPES = ['read', 'submit', 'submit:code', 'admin'] as const;
/** One of {@link SCOPES}. */
export type Scope = (typeof SCOPES)[number];

/** API keys start with this: `cck_<id>_<secret>`. */
export const API_KEY_PREFIX = 'cck_';
/** Worker tokens start with this: `cct_<id>_<secret>`. */
export const WORKER_TOKEN_PREFIX = 'cct_';

/** A credential's parts, read from its text. */
export interface CredentialParts {
  kind: 'key' | 'token';
  /** Public: names the credential in lists, logs and the store. */
  id: string;
  /** Private: never stored, never sent (a worker signs with it). */
  secret: string;
}

const CREDENTIAL = /^(cck|cct)_([A-Za-z0-9]{8,32})_([A-Za-z0-9_-]{20,100})$/;

/** Split an API key or worker token into its parts; null when it has neither shape. */
export function parseCredential(text: string): CredentialParts | null {
  const m = CREDENTIAL.exec(text.trim());
  if (!m) return null;
  return { kind: m[1] === 'cck' ? 'key' : 'token', id: m[2], secret: m[3] };
}

/**
 * A worker's proof, in its hello, that it holds its token: an HMAC-SHA256, keyed by the
 * token's secret, of {@link helloSigningText}. The token itself never crosses the wire.
 */
export const HelloAuthSchema = z.object({
  tokenId: z.string().min(8).max(32),
  /** When the worker signed, epoch milliseconds; the foreman refuses a clock skew beyond its window. */
  timestamp: z.number().int().positive(),
  /** Random, once per hello: a replayed hello is refused. */
  nonce: z.string().min(16).max(64),
  /** base64url of the HMAC-SHA256. */
  signature: z.string().min(16).max(128),
});
/** A worker's proof of its token. */
export type HelloAuth = z.infer<typeof HelloAuthSchema>;

/**
 * What a worker signs: who it is, which token, when, a nonce, and the host it dialed (so a
 * hello captured on its way to one foreman is no good at another address).
 */
export function helloSigningText(p: { workerId: string; tokenId: string; timestamp: number; nonce: string; host: string }): string {
  return ['crowdcompute-hello-v1', p.workerId, p.tokenId, String(p.timestamp), p.nonce, p.host.toLowerCase()].join('\n');
}

/** A join link: the foreman's join page, with the credential in the fragment (browsers send it nowhere). */
export function joinUrl(origin: string, credential: string | null): string {
  return `${origin.replace(/\/+$/, '')}/join${credential ? `#${credential}` : ''}`;
}
