/**
 * Why a connection to a foreman could not be made, in words a person can act on. The error of
 * a failed attempt is a socket's (`connect ECONNREFUSED 127.0.0.1:8000`) or a WebSocket
 * library's (`Unexpected server response: 404`): right, but it names neither what the URL
 * reached nor what to type instead. No Node built-in is used: a browser's worker runs it too
 * (its errors say less, and are passed through as they are).
 */

/** A failed connection attempt, explained. */
export interface ConnectFailure {
  /** What went wrong: `connection refused (ECONNREFUSED): nothing listens on 127.0.0.1:8000`. */
  reason: string;
  /** The URL that was most likely meant, when the failure shows it (a foreman's /ws path, ws:// for wss:// to plain HTTP). */
  suggestion?: string;
}

/** Explain the error `error` of an attempt to open a WebSocket to `url`. */
export function explainConnectFailure(url: string, error: string): ConnectFailure {
  let u: URL | null = null;
  try { u = new URL(url); } catch { /* the error then says what is wrong with it */ }
  const at = u?.host ?? url;
  const code = /\b(E[A-Z_]{3,})\b/.exec(error)?.[1];
  const status = /Unexpected server response: (\d{3})/.exec(error);
  if (status) {
    // A foreman's HTTP server answers any path but its workers' endpoint (/ws) with a 404.
    if (status[1] === '404' && u) {
      const suggestion = u.pathname === '/' ? { suggestion: withPath(u, '/ws') } : {};
      return { reason: `HTTP 404 from ${at}: the server there has no WebSocket endpoint at ${u.pathname} (a foreman's is /ws)`, ...suggestion };
    }
    return { reason: `HTTP ${status[1]} from ${at} instead of a WebSocket: is it a foreman?` };
  }
  if (code === 'ECONNREFUSED') return { reason: `connection refused (ECONNREFUSED): nothing listens on ${at}` };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return { reason: `host name ${u?.hostname ?? at} not resolved (${code})` };
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return { reason: `no route to ${at} (${code})` };
  // A TLS handshake answered with plain HTTP: OpenSSL reads the HTTP status line as a record header.
  if (u?.protocol === 'wss:' && /wrong version number|packet length too long|record header|EPROTO/i.test(error)) {
    const plain = new URL(u.href);
    plain.protocol = 'ws:';
    return { reason: `TLS (wss://) to ${at}, which answers plain HTTP (${code ?? 'no TLS'})`, suggestion: plain.href };
  }
  if (/certificate|self[- ]signed|CERT_|UNABLE_TO_VERIFY/i.test(error)) return { reason: `the TLS certificate of ${at} is not trusted (${oneLine(error)})` };
  if (code === 'ECONNRESET' || /socket hang up/i.test(error)) return { reason: `${at} closed the connection before the WebSocket opened (${code ?? 'socket hang up'})` };
  if (code === 'ETIMEDOUT' || /^no answer within/.test(error)) return { reason: `no answer from ${at} (${oneLine(error)})` };
  return { reason: oneLine(error) || 'could not connect' };
}

/** `u` with its path replaced (and no query or fragment). */
function withPath(u: URL, path: string): string {
  const v = new URL(u.href);
  v.pathname = path;
  v.search = '';
  v.hash = '';
  return v.href;
}

/** An error's text on one line (OpenSSL's end with a newline and a source location). */
function oneLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}
