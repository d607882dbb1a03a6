import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HelloAuthSchema } from '../../protocol/index.ts';
import { signHello } from './hello-signature.ts';

/** The test vector of docs/protocol.md ("Signing test vector"), as src/protocol/auth.test.ts checks it too. */
const V = {
  token: 'cct_abcdEFGH1234_secretSECRETsecret0123456789',
  workerId: 'math-worker-001',
  host: 'Foreman.Example.com:8000',
  timestamp: 1767225600000,
  nonce: 'bm9uY2Utb25jZS0xMjM0',
  signature: 'SLWQfpQKMkHNHbOGc3smxwDWoHyAassLF5cPrT5fv7k',
} as const;

test("the worker's signature matches the signing vector, from the host as given and as a URL's host", async () => {
  const expected = { tokenId: 'abcdEFGH1234', timestamp: V.timestamp, nonce: V.nonce, signature: V.signature };
  assert.deepEqual(await signHello(V.token, V.workerId, V.host, V.timestamp, V.nonce), expected);
  // What the runtime signs: the host of the URL it dialed, as WHATWG URL writes it.
  const dialed = new URL(`ws://${V.host}/ws`).host;
  assert.deepEqual(await signHello(V.token, V.workerId, dialed, V.timestamp, V.nonce), expected);
});

test('a real hello takes a fresh nonce within the bounds the foreman accepts', async () => {
  const a = await signHello(V.token, V.workerId, V.host);
  const b = await signHello(V.token, V.workerId, V.host);
  assert.notEqual(a.nonce, b.nonce);
  assert.equal(HelloAuthSchema.safeParse(a).success, true);
});
