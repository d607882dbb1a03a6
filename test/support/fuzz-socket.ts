/**
 * A WebSocket peer for the fuzz suite: sends any bytes as a text or binary frame, keeps what
 * the foreman answers, and says when the foreman closed it (and with what code) instead of
 * throwing, since being closed is a fair answer to some of what it sends.
 */
import WebSocket from 'ws';

/** A message from the foreman (frames holding several are split). */
export type Received = { type?: string; code?: string; requestId?: string; [k: string]: any };

/** A raw peer on a foreman's /ws. */
export class FuzzSocket {
  private readonly ws: WebSocket;
  /** Messages received and not yet taken by {@link FuzzSocket.next}. */
  readonly received: Received[] = [];
  /** Every `error` the foreman sent, taken or not. */
  readonly errors: Received[] = [];
  /** Frames from the foreman that were not JSON. */
  readonly unreadable: string[] = [];
  /** The close code, once closed. */
  closeCode: number | null = null;
  closeReason = '';
  private readonly closedPromise: Promise<void>;
  private wake: (() => void) | null = null;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closedPromise = new Promise((resolve) => ws.once('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.wake?.();
      resolve();
    }));
    ws.on('error', () => { /* the close that follows says enough */ });
    ws.on('message', (data) => {
      let v: unknown;
      try {
        v = JSON.parse(data.toString());
      } catch {
        this.unreadable.push(data.toString().slice(0, 200));
        return;
      }
      for (const m of (Array.isArray(v) ? v : [v]) as Received[]) {
        this.received.push(m);
        if (m.type === 'error') this.errors.push(m);
      }
      this.wake?.();
    });
  }

  /** Connect to `url`, with an API key in the upgrade or none. */
  static async open(url: string, apiKey: string | null): Promise<FuzzSocket> {
    // A foreman that accepts the connection but never upgrades it fails the case, not the run.
    const ws = new WebSocket(url, { handshakeTimeout: 15_000, ...(apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {}) });
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    return new FuzzSocket(ws);
  }

  /** True while the connection is open. */
  get isOpen(): boolean { return this.ws.readyState === WebSocket.OPEN; }

  /** Send a message (an object, as JSON) or raw text or bytes, as a text frame unless `binary`. */
  send(data: unknown, binary = false): void {
    if (!this.isOpen) return;
    const payload = typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data);
    this.ws.send(payload, { binary });
  }

  /**
   * The first message that matches (taken from those received), or null if the connection
   * closes first. Fails at the deadline.
   */
  async next(pred: (m: Received) => boolean, deadlineMs: number, what: string): Promise<Received | null> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i >= 0) return this.received.splice(i, 1)[0];
      if (this.closeCode !== null) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} from the foreman within ${deadlineMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
      });
    }
  }

  /** Resolves when a message arrives or the connection closes, or after `ms`. */
  async idle(ms: number): Promise<void> {
    if (this.closeCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
    });
  }

  /** Close the connection and wait until it is closed. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closedPromise;
  }
}
