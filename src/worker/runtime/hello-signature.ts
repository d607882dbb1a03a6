/**
 * A worker's proof of its token: an HMAC-SHA256, keyed by the token's secret, of what
 * protocol/auth.ts says to sign. Computed by @noble/hashes, in plain JavaScript, the same in
 * Node and in every browser: WebCrypto's HMAC exists only in secure contexts, and a browser
 * joining from http://192.168.1.20:8000 is not one.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { CrowdComputeError, helloSigningText, parseCredential, type HelloAuth } from '../../protocol/index.ts';

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Check a worker token's shape now, so a typo fails at construction, not at every connect. */
export function checkWorkerToken(token: string): void {
  if (parseCredential(token)?.kind !== 'token') {
    throw new CrowdComputeError('CC_ERR_UNAUTHORIZED', 'a worker token looks like cct_<id>_<secret> (crowdcompute token create --worker <id> prints one)');
  }
}

/** A fresh nonce: 18 random bytes, 24 characters of base64url. */
function randomNonce(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(18)));
}

/**
 * Sign a hello for `workerId`, dialing `host`, with `token`. The time and nonce are given only
 * to check a known signature (the test vector of docs/protocol.md); a real hello takes fresh ones.
 */
export async function signHello(token: string, workerId: string, host: string, now = Date.now(), nonce = randomNonce()): Promise<HelloAuth> {
  const parts = parseCredential(token)!;
  const text = helloSigningText({ workerId, tokenId: parts.id, timestamp: now, nonce, host });
  const signature = base64url(hmac(sha256, encoder.encode(parts.secret), encoder.encode(text)));
  return { tokenId: parts.id, timestamp: now, nonce, signature };
}
