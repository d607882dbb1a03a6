import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/** Which peers may say who the client is, and the client's address of a request by that rule. */
export interface ClientAddresses {
  /** True when a peer at this address is a trusted proxy (hop 0 is the socket's peer). Given to Fastify as `trustProxy` when there are any. */
  readonly trust: (address: string, hop: number) => boolean;
  /** True when the socket's peer is a trusted proxy (its connections are not capped as one client's). */
  isTrustedProxy(address: string): boolean;
  /** The client's address of a request or WebSocket upgrade: what Fastify's `req.ip` says for the same request. */
  of(req: IncomingMessage): string;
}

/**
 * The client's address, the same for HTTP requests and WebSocket upgrades. `X-Forwarded-For`
 * is read only from the trusted proxies, hop by hop from the socket's peer: the address is the
 * first one, walking back, that is not a trusted proxy. From anyone else the header is ignored,
 * so that a client cannot pick the address its failed attempts and connections count against.
 * Fastify is given the same rule (`trustProxy`), so `req.ip` and {@link ClientAddresses.of}
 * agree. Throws naming the entry (and the flag) when an entry is not an address or a range.
 */
export function clientAddresses(trustedProxies: readonly string[]): ClientAddresses {
  for (const entry of trustedProxies) {
    try {
      proxyAddr.compile([entry]);
    } catch (err) {
      throw new RangeError(`--trusted-proxy "${entry}" is not an IP address, a CIDR range (10.0.0.0/8) or one of loopback, linklocal, uniquelocal: ${(err as Error).message}`);
    }
  }
  const trust = trustedProxies.length > 0 ? proxyAddr.compile([...trustedProxies]) : () => false;
  return {
    trust,
    isTrustedProxy: (address) => trust(address, 0),
    of: (req) => (trustedProxies.length > 0 ? proxyAddr(req, trust) : req.socket.remoteAddress) ?? 'unknown',
  };
}
