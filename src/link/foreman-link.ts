import WebSocket from 'ws';
import type { Logger } from 'pino';
import { parseOutbound, type Inbound, type Outbound } from '../protocol/index.ts';

export interface ForemanLinkOptions {
  /** One or more foreman WebSocket URLs; reconnects rotate through them. */
  urls: string[];
  /** Base delay between reconnection attempts (doubles per failure, capped at 30 s, jittered). */
  reconnectIntervalMs: number;
  /** -1 = unlimited. */
  maxReconnectAttempts: number;
  /** Reconnect after a lost connection; false = give up (the owner stops). */
  autoRestart: boolean;
  log: Logger;
  onOpen: () => void;
  onMessage: (msg: Outbound) => void;
  /** A frame or message from the foreman failed validation. */
  onProtocolError: (message: string) => void;
  onClose: (info: { code: number; reason: string; willReconnect: boolean }) => void;
  /** Reconnection is exhausted. */
  onGiveUp: (lastError: string) => void;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * A worker's or client's connection to a foreman: one WebSocket at a time, reconnected
 * with exponential backoff and jitter when it drops, rotating through the given URLs.
 * Sends while disconnected are dropped on purpose: what must survive a reconnect (results
 * not yet acknowledged) is kept and resent by the owner after the next hello.
 * Messages sent in one event-loop turn leave as one frame.
 */
export class ForemanLink {
  private ws: WebSocket | null = null;
  private readonly o: ForemanLinkOptions;
  private attempts = 0;
  private urlIndex = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private outbox: string[] = [];
  private scheduled = false;
  private lastError = '';
  private lastHeard = 0;
  private silenceTimer: NodeJS.Timeout | null = null;
  private silenceMs = 0;

  constructor(options: ForemanLinkOptions) {
    this.o = options;
  }

  get connected(): boolean { return this.ws?.readyState === WebSocket.OPEN; }
  get currentUrl(): string { return this.o.urls[this.urlIndex % this.o.urls.length]; }

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
    if (this.silenceTimer) clearInterval(this.silenceTimer);
    this.silenceTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    this.flush(ws);
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate(); else ws.close(1000, 'worker stopping');
      setTimeout(() => { ws.terminate(); resolve(); }, 2000).unref();
    });
  }

  /**
   * Treat the connection as dead when nothing (no message, no ping) has come from the foreman
   * for `ms`: a network that drops without closing the socket would otherwise hang us forever.
   * The foreman pings at least every heartbeat interval. 0 turns the check off.
   */
  setSilenceTimeout(ms: number): void {
    this.silenceMs = ms;
    if (this.silenceTimer) clearInterval(this.silenceTimer);
    this.silenceTimer = null;
    if (ms <= 0) return;
    this.lastHeard = Date.now();
    this.silenceTimer = setInterval(() => {
      if (this.ws && this.ws.readyState === WebSocket.OPEN && Date.now() - this.lastHeard > this.silenceMs) {
        this.o.log.warn({ url: this.currentUrl, silentMs: Date.now() - this.lastHeard }, 'foreman silent for too long; reconnecting');
        this.ws.terminate();
      }
    }, Math.max(20, Math.floor(ms / 4)));
    this.silenceTimer.unref();
  }

  /** Drop the current connection now and reconnect (POST /restart on the worker's status server). */
  restart(): void {
    if (this.stopped) return;
    this.ws?.terminate();
  }

  send(message: Inbound): boolean {
    if (!this.connected) return false;
    this.outbox.push(JSON.stringify(message));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => { this.scheduled = false; if (this.ws) this.flush(this.ws); });
    }
    return true;
  }

  private flush(ws: WebSocket): void {
    if (this.outbox.length === 0) return;
    const frame = this.outbox.length === 1 ? this.outbox[0] : `[${this.outbox.join(',')}]`;
    this.outbox = [];
    if (ws.readyState === WebSocket.OPEN) ws.send(frame);
  }

  private connect(): void {
    if (this.stopped) return;
    const url = this.currentUrl;
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000 });
    this.ws = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      this.lastHeard = Date.now();
      this.attempts = 0;
      this.o.log.info({ url }, 'connected to foreman');
      this.o.onOpen();
    });
    ws.on('ping', () => { this.lastHeard = Date.now(); });
    ws.on('message', (data) => {
      this.lastHeard = Date.now();
      for (const parsed of parseOutbound(data.toString())) {
        if (parsed.ok) this.o.onMessage(parsed.message);
        else this.o.onProtocolError(parsed.error.message);
      }
    });
    ws.on('error', (err) => { this.lastError = err.message; });
    ws.on('close', (code, reasonBuf) => {
      if (this.ws === ws) this.ws = null;
      this.outbox = [];
      const reason = reasonBuf.toString();
      const willReconnect = !this.stopped && (this.o.autoRestart || !opened);
      // 1001 is a foreman shutting down on purpose: expected, not alarming.
      if (opened && !this.stopped) this.o.log[code === 1001 ? 'info' : 'warn']({ url, code, reason }, 'connection to foreman closed');
      this.o.onClose({ code, reason, willReconnect });
      if (willReconnect) this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    this.attempts++;
    if (this.o.maxReconnectAttempts >= 0 && this.attempts > this.o.maxReconnectAttempts) {
      this.stopped = true;
      this.o.onGiveUp(`CC_ERR_CONNECTION: gave up after ${this.o.maxReconnectAttempts} reconnection attempts to ${this.o.urls.join(', ')}: ${this.lastError || 'connection closed'}`);
      return;
    }
    this.urlIndex++;
    const ceiling = Math.min(MAX_BACKOFF_MS, this.o.reconnectIntervalMs * 2 ** Math.min(10, this.attempts - 1));
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.o.log.debug({ attempt: this.attempts, delayMs: delay, next: this.currentUrl }, 'reconnecting');
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }
}
