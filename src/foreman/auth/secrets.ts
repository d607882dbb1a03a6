/**
 * The cryptography of credentials, in one place. API keys are random and stored as SHA-256
 * hashes. Worker tokens are derived from the foremen's secret (an HMAC of the token's id), so
 * the store keeps nothing that would let a copy of it sign as a worker; the secret itself
 * lives outside the database (an environment variable, or the local credentials file).
 */
import { createHmac, hash, randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A new random secret for a foreman deployment: 32 bytes, base64url. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A credential id: 12 characters of [A-Za-z0-9], public (it names the credential). */
export function newCredentialId(): string {
  const bytes = randomBytes(12);
  let id = '';
  for (const b of bytes) id += ALPHABET[b % ALPHABET.length];
  return id;
}

/** An API key's secret part: 32 random bytes, base64url. */
export function newKeySecret(): string {
  return randomBytes(32).toString('base64url');
}

/** What the store keeps of an API key's secret: its SHA-256, hex (checked on every request: the one-shot form, no Hash object). */
export function hashKeySecret(secret: string): string {
  return hash('sha256', secret);
}

/** HMAC-SHA256 of `text` under `key`, base64url. */
export function sign(key: string, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

/** A worker token's secret part, derived from the deployment's secret and the token's id. */
export function workerTokenSecret(secret: string, tokenId: string): string {
  return sign(secret, `crowdcompute worker token\n${tokenId}`);
}

/**
 * The secret webhook deliveries are signed with, derived from the deployment's secret (so every
 * foreman of a deployment signs alike and nothing more is stored), in the Standard Webhooks
 * form: `whsec_` and the base64 of the 32 key bytes. Receivers verify with it.
 */
export function webhookSecret(secret: string): string {
  return `whsec_${createHmac('sha256', secret).update('crowdcompute webhook secret').digest('base64')}`;
}

/**
 * A fingerprint of the deployment's secret, kept in the store: a foreman started with another
 * secret than the one the database was set up with is refused, instead of refusing every worker.
 */
export function secretFingerprint(secret: string): string {
  return sign(secret, 'crowdcompute secret fingerprint');
}

/**
 * Compare two strings in time that does not depend on where they differ (only on their
 * lengths, which are public: a hash's, a signature's). Every character is looked at, the
 * differences are OR-ed together, and the answer is read once at the end; no Buffer is made,
 * which is what made this cost more than the hash it checks.
 */
export function safeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
