import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { helloSigningText, parseCredential } from './auth.ts';

/** The test vector of docs/protocol.md ("Signing test vector"); python/tests/test_auth.py checks the same one. */
const HELLO_VECTOR = {
  token: 'cct_abcdEFGH1234_secretSECRETsecret0123456789',
  workerId: 'math-worker-001',
  host: 'Foreman.Example.com:8000',
  timestamp: 1767225600000,
  nonce: 'bm9uY2Utb25jZS0xMjM0',
  text: 'crowdcompute-hello-v1\nmath-worker-001\nabcdEFGH1234\n1767225600000\nbm9uY2Utb25jZS0xMjM0\nforeman.example.com:8000',
  signature: 'SLWQfpQKMkHNHbOGc3smxwDWoHyAassLF5cPrT5fv7k',
} as const;

test('a token splits at the first underscore after its id; the secret may hold underscores', () => {
  assert.deepEqual(parseCredential(HELLO_VECTOR.token), { kind: 'token', id: 'abcdEFGH1234', secret: 'secretSECRETsecret0123456789' });
  assert.deepEqual(parseCredential('cct_abcdEFGH1234_se_cr_et-0123456789abcdef'), { kind: 'token', id: 'abcdEFGH1234', secret: 'se_cr_et-0123456789abcdef' });
  assert.equal(parseCredential('cct_short_secretSECRETsecret0123456789'), null, 'an id is at least 8 characters');
  assert.equal(parseCredential('cct_abcdEFGH1234_tooShort'), null, 'a secret is at least 20 characters');
});

test('the signing vector: six lines, the host lowercased, and its HMAC-SHA256 in base64url', () => {
  const { id, secret } = parseCredential(HELLO_VECTOR.token)!;
  const text = helloSigningText({ workerId: HELLO_VECTOR.workerId, tokenId: id, timestamp: HELLO_VECTOR.timestamp, nonce: HELLO_VECTOR.nonce, host: HELLO_VECTOR.host });
  assert.equal(text, HELLO_VECTOR.text);
  assert.equal(createHmac('sha256', secret).update(text).digest('base64url'), HELLO_VECTOR.signature);
});
