import { WebSocket as WsWebSocket } from 'ws';

/**
 * The ws package's WebSocket as a standard-API constructor (what the link takes) that opens
 * with these options: headers (an API key), a private CA. In Node, ws implements the standard
 * API faster than the global WebSocket.
 */
export function withOptions(options: WsWebSocket.ClientOptions): typeof WebSocket {
  return class extends WsWebSocket {
    constructor(url: string) { super(url, options); }
  } as unknown as typeof WebSocket;
}
