import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainConnectFailure } from './connect-failure.ts';

// The errors as the ws package words them in Node 24 (OpenSSL's ends with a newline).
test('a refused connection, an unknown host, a 404 and TLS to plain HTTP: the reason in words, and the URL meant when it shows', () => {
  assert.deepEqual(explainConnectFailure('ws://127.0.0.1:1/ws', 'connect ECONNREFUSED 127.0.0.1:1'),
    { reason: 'connection refused (ECONNREFUSED): nothing listens on 127.0.0.1:1' });
  assert.deepEqual(explainConnectFailure('ws://nosuch.invalid:8000/ws', 'getaddrinfo ENOTFOUND nosuch.invalid'),
    { reason: 'host name nosuch.invalid not resolved (ENOTFOUND)' });
  assert.match(explainConnectFailure('ws://foreman:8000/ws', 'getaddrinfo EAI_AGAIN foreman').reason, /^host name foreman not resolved \(EAI_AGAIN\)$/);
  assert.deepEqual(explainConnectFailure('ws://127.0.0.1:8000', 'Unexpected server response: 404'),
    { reason: 'HTTP 404 from 127.0.0.1:8000: the server there has no WebSocket endpoint at / (a foreman\'s is /ws)', suggestion: 'ws://127.0.0.1:8000/ws' });
  // Another path may be a proxy's route: no guess at what was meant.
  assert.equal(explainConnectFailure('ws://proxy/crowd', 'Unexpected server response: 404').suggestion, undefined);
  assert.match(explainConnectFailure('ws://127.0.0.1:8000/ws', 'Unexpected server response: 502').reason, /^HTTP 502 from 127\.0\.0\.1:8000 instead of a WebSocket/);
  const tls = explainConnectFailure('wss://127.0.0.1:8000/ws',
    'write EPROTO 401DA2C4187F0000:error:0A00010B:SSL routines:tls_validate_record_header:wrong version number:../deps/openssl/openssl/ssl/record/methods/tlsany_meth.c:77:\n');
  assert.deepEqual(tls, { reason: 'TLS (wss://) to 127.0.0.1:8000, which answers plain HTTP (EPROTO)', suggestion: 'ws://127.0.0.1:8000/ws' });
});

test('an error it does not know is passed on, on one line; a browser\'s, which says nothing, too', () => {
  assert.deepEqual(explainConnectFailure('ws://h:1/ws', 'something odd\n  happened\n'), { reason: 'something odd happened' });
  assert.deepEqual(explainConnectFailure('ws://h:1/ws', 'cannot connect to ws://h:1/ws'), { reason: 'cannot connect to ws://h:1/ws' });
  assert.deepEqual(explainConnectFailure('not a url', ''), { reason: 'could not connect' });
});
