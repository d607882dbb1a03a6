import { FrameBatcher, parseOutbound, type Inbound, type Outbound } from '../protocol/index.ts';
import { retryDelayMs } from '../core/retry.ts';
import type { Log } from './log.ts';

/** The standard WebSocket constructor (Node's global, a browser's, or a test's). */
export type WebSocketConstructor = new (url: string) => WebSocket;

/** How a link connects, reconnects, and whom it tells. */
export interface ForemanLinkOptions {
  /** One or more foreman WebSocket URLs; reconnects rotate through them. */
  urls: string[];
  /** Base delay between reconnection attempts (doubles per failure, jittered, capped at `maxReconnectDelayMs`). */
  reconnectIntervalMs: number;
  /** Upper bound of the reconnection delay. Default 30 s. */
  maxReconnectDelayMs?: number;
  /** -1 = unlimited. */
  maxReconnectAttempts: number;
  /** Reconnect after a lost connection; false = give up (the owner stops). */
  autoRestart: boolean;
  /** How long a connection attempt may take. Default 10 s. */
  connectTimeoutMs?: number;
  log: Log;
  onOpen: () => void;
  onMessage: (msg: Outbound) => void;
  /** A frame or message from the foreman failed validation. */
  onProtocolError: (message: string) => void;
  /** `error`: why an attempt that never opened failed (a refused connection, an HTTP status), as the WebSocket said it. */
  onClose: (info: { code: number; reason: string; willReconnect: boolean; error?: string }) => void;
  /** Reconnection is exhausted. */
  onGiveUp: (lastError: string) => void;
  /** Default: the global WebSocket. */
  webSocket?: WebSocketConstructor;
}

const OPEN = 1;
const CLOSED = 3;

/**
 * A worker's or client's connection to a foreman: one WebSocket at a time, reconnected with
 * exponential backoff and jitter when it drops, rotating through the given URLs. It uses the
 * standard WebSocket API only, so it runs in Node and in a browser alike.
 *
 * Sends while disconnected are dropped on purpose: what must survive a reconnect (results
 * not yet acknowledged) is kept and resent by the owner after the next hello. Messages sent
 * in one turn of the event loop leave as one frame.
 */
export class ForemanLink {
  private ws: WebSocket | null = null;
  private readonly o: ForemanLinkOptions;
  private readonly WS: WebSocketConstructor;
  private readonly outbox: FrameBatcher;
  private attempts = 0;
  private urlIndex = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;
  private lastError = '';
  private lastHeard = 0;
  private silenceTimer: ReturnType<typeof setInterval> | null = null;
  private silenceMs = 0;
  private maxDelayMs: number;

  constructor(options: ForemanLinkOptions) {
    this.o = options;
    this.maxDelayMs = options.maxReconnectDelayMs ?? 30_000;
    const WS = options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError('ForemanLink: this runtime has no WebSocket; pass options.webSocket');
    this.WS = WS;
    this.outbox = new FrameBatcher({ write: (frame) => { if (this.ws?.readyState === OPEN) this.ws.send(frame); } });
  }

  /** True while a connection is open. */
  get connected(): boolean { return this.ws?.readyState === OPEN; }
  /** The URL in use (or to be tried next). */
  get currentUrl(): string { return this.o.urls[this.urlIndex % this.o.urls.length]; }

  /** Connect, and keep reconnecting until stopped. Safe to call twice. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempts = 0;
    this.connect();
  }

  /** Close the socket and stop reconnecting. Safe to call twice. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.setSilenceTimeout(0);
    // What was sent this turn (a hand-back, the last results) leaves before the close.
    this.outbox.flush();
    const ws = this.ws;
    this.ws = null;
    if (!ws || ws.readyState === CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const give = setTimeout(() => { ws.onclose = null; resolve(); }, 2_000);
      ws.onclose = () => { clearTimeout(give); resolve(); };
      ws.onmessage = null;
      try { ws.close(1000, 'stopping'); } catch { resolve(); }
    });
  }

  /** Cap the reconnection delay (a worker holding leases must come back before they expire). */
  setMaxReconnectDelay(ms: number): void {
    this.maxDelayMs = Math.max(this.o.reconnectIntervalMs, Math.min(this.o.maxReconnectDelayMs ?? 30_000, ms));
  }

  /**
   * Treat the connection as dead when nothing has come from the foreman for `ms`: a network
   * that drops without closing the socket would otherwise hang us forever. The foreman
   * answers every heartbeat. 0 turns the check off.
   */
  setSilenceTimeout(ms: number): void {
    this.silenceMs = ms;
    if (this.silenceTimer) clearInterval(this.silenceTimer);
    this.silenceTimer = null;
    if (ms <= 0) return;
    this.lastHeard = Date.now();
    this.silenceTimer = setInterval(() => {
      if (this.ws?.readyState === OPEN && Date.now() - this.lastHeard > this.silenceMs) {
        this.o.log.warn({ url: this.currentUrl, silentMs: Date.now() - this.lastHeard }, 'foreman silent for too long; reconnecting');
        this.abandon(this.ws, 4000, 'foreman silent');
      }
    }, Math.max(20, Math.floor(ms / 4)));
    unref(this.silenceTimer);
  }

  /** Drop the current connection now and reconnect. */
  restart(): void {
    if (!this.stopped && this.ws) this.abandon(this.ws, 4000, 'restart');
  }

  /** Queue a message; false when there is no open connection (it is dropped). */
  send(message: Inbound): boolean {
    if (!this.connected) return false;
    this.outbox.push(message);
    return true;
  }

  /** Write what is queued now instead of at the end of the turn. */
  flush(): void {
    this.outbox.flush();
  }

  private connect(): void {
    if (this.stopped) return;
    const url = this.currentUrl;
    // Only this attempt's own error may explain its failure.
    this.lastError = '';
    let ws: WebSocket;
    try {
      ws = new this.WS(url);
    } catch (err) {
      this.lastError = (err as Error).message;
      this.closed(null, 1006, this.lastError, false);
      return;
    }
    this.ws = ws;
    let opened = false;
    const handshake = setTimeout(() => {
      this.lastError = `no answer within ${this.o.connectTimeoutMs ?? 10_000} ms`;
      this.abandon(ws, 1006, this.lastError);
    }, this.o.connectTimeoutMs ?? 10_000);
    unref(handshake);
    ws.onopen = () => {
      clearTimeout(handshake);
      opened = true;
      this.lastHeard = Date.now();
      this.attempts = 0;
      this.o.log.info({ url }, 'connected to foreman');
      this.o.onOpen();
    };
    ws.onmessage = (ev: MessageEvent) => {
      this.lastHeard = Date.now();
      const text = typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer);
      for (const parsed of parseOutbound(text)) {
        if (parsed.ok) this.o.onMessage(parsed.message);
        else this.o.onProtocolError(parsed.error.message);
      }
    };
    ws.onerror = (ev: Event) => { this.lastError = (ev as Event & { message?: string }).message || `cannot connect to ${url}`; };
    ws.onclose = (ev: CloseEvent) => {
      clearTimeout(handshake);
      this.closed(ws, ev.code, ev.reason, opened);
    };
  }

  /** Give up on a socket now (frozen network, timeout, restart) without waiting for its closing handshake. */
  private abandon(ws: WebSocket, code: number, reason: string): void {
    const opened = this.ws === ws && ws.readyState === OPEN;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try { ws.close(); } catch { /* never opened */ }
    this.closed(ws, code, reason, opened);
  }

  private closed(ws: WebSocket | null, code: number, reason: string, opened: boolean): void {
    if (ws && this.ws !== ws) return;
    this.ws = null;
    this.outbox.clear();
    const willReconnect = !this.stopped && (this.o.autoRestart || !opened);
    // 1001 is a foreman shutting down on purpose: expected, not alarming.
    if (opened && !this.stopped) this.o.log[code === 1001 ? 'info' : 'warn']({ url: this.currentUrl, code, reason }, 'connection to foreman closed');
    this.o.onClose({ code, reason, willReconnect, ...(!opened && this.lastError ? { error: this.lastError } : {}) });
    if (willReconnect) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.attempts++;
    if (this.o.maxReconnectAttempts >= 0 && this.attempts > this.o.maxReconnectAttempts) {
      this.stopped = true;
      this.o.onGiveUp(`CC_ERR_CONNECTION: gave up after ${this.o.maxReconnectAttempts} reconnection attempts to ${this.o.urls.join(', ')}: ${this.lastError || 'connection closed'}`);
      return;
    }
    this.urlIndex++;
    const delay = retryDelayMs(this.attempts, { baseMs: this.o.reconnectIntervalMs, maxMs: this.maxDelayMs });
    this.o.log.debug({ attempt: this.attempts, delayMs: delay, next: this.currentUrl, ...(this.lastError ? { lastError: this.lastError.trim() } : {}) }, 'reconnecting');
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }
}

/** Let a timer not keep Node alive (browsers have no such notion). */
function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}
