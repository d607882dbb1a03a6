/**
 * The names the worker's status server answers to. A web page can point a DNS name of its own
 * at 127.0.0.1 (DNS rebinding): the browser then sends the page's requests to the status
 * server as same-origin ones, able to read the answers, with that name in `Host`. Answering
 * only to names of this machine closes that door. An IP address can never be such a name (the
 * page would have to be served from that address), so any is answered.
 * @internal
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';

/** Addresses that mean "every interface": not a name anyone asks for. */
const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/** A host name in the form compared: lower case, without a trailing dot or IPv6 brackets. */
const normal = (name: string) => name.trim().toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1');

/**
 * The names of this machine the status server answers to: localhost (and names under it, which
 * browsers resolve to this machine themselves), the machine's hostname and its first label, the
 * interface it is bound to when that is a name, and the operator's `extra` names.
 */
export function statusHostNames(boundHost: string, extra: readonly string[] = []): Set<string> {
  const names = new Set(['localhost', normal(hostname()), normal(hostname()).split('.')[0]!]);
  if (!WILDCARDS.has(boundHost)) names.add(normal(boundHost));
  for (const name of extra) names.add(normal(name));
  names.delete('');
  return names;
}

/**
 * Null when a request with this `Host` header may be answered, else why not, in words for the
 * person who sent it. No Host (HTTP/1.0 tools) is answered: browsers always send one.
 */
export function hostRefusal(host: string | undefined, names: ReadonlySet<string>): string | null {
  if (host === undefined || host === '') return null;
  let name: string;
  try {
    name = normal(new URL(`http://${host}/`).hostname);
  } catch {
    return refusal(host);
  }
  if (isIP(name) !== 0 || names.has(name) || name.endsWith('.localhost')) return null;
  return refusal(host);
}

const refusal = (host: string) => `CC_ERR_FORBIDDEN: this worker's status server does not answer to the host name in "Host: ${host}": it answers to localhost, IP addresses, this machine's hostname and the names given with --status-host-name <name> (statusHostNames). Open it by one of those, or add this name if it is yours.`;
