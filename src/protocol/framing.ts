/**
 * Several messages per frame. Messages sent to one peer in one turn of the event loop leave
 * as one frame holding a JSON array; a lone message still goes out as a plain object, so a
 * browser or a hand-written peer sees the simple form most of the time. Foreman, worker and
 * client all send through a {@link FrameBatcher}.
 */

import { CrowdComputeError } from './errors.ts';
import { MAX_DOCUMENT_DEPTH, messagesTooDeep } from './json-limits.ts';

/** Run `fn` after the current turn, once pending I/O has been seen (setImmediate where there is one). */
export type Scheduler = (fn: () => void) => void;

const defaultScheduler: Scheduler = typeof globalThis.setImmediate === 'function'
  ? (fn) => { globalThis.setImmediate(fn); }
  : (fn) => { setTimeout(fn, 0); };

/**
 * A message of a frame that nests too deep to be handled (see protocol/json-limits.ts). It
 * stands in the frame's list for the message, so the receiver answers it (by its request id)
 * and goes on with the others.
 */
export class TooDeepMessage {
  readonly requestId: string | undefined;
  readonly type: string | undefined;
  constructor(raw: unknown) {
    const m = typeof raw === 'object' && raw !== null ? raw as { requestId?: unknown; type?: unknown } : {};
    this.requestId = typeof m.requestId === 'string' ? m.requestId.slice(0, 100) : undefined;
    this.type = typeof m.type === 'string' ? m.type.slice(0, 60) : undefined;
  }
}

/**
 * The messages of a frame: one, or several when the frame is a JSON array; a message nested
 * deeper than MAX_DOCUMENT_DEPTH comes as a {@link TooDeepMessage}. Throws CC_ERR_BAD_JSON.
 * (Parsing deep JSON is safe; handling it afterwards is what is not.)
 */
export function decodeFrame(text: string): unknown[] {
  const deep = messagesTooDeep(text, MAX_DOCUMENT_DEPTH);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CrowdComputeError('CC_ERR_BAD_JSON', `frame is not valid JSON (${(err as Error).message})`);
  }
  const messages = Array.isArray(value) ? value : [value];
  for (const i of deep) if (i < messages.length) messages[i] = new TooDeepMessage(messages[i]);
  return messages;
}

/** One frame from messages already encoded as JSON text. */
export function encodeFrame(texts: readonly string[]): string {
  return texts.length === 1 ? texts[0] : `[${texts.join(',')}]`;
}

/** Options of a {@link FrameBatcher}. */
export interface FrameBatcherOptions {
  /** Writes one frame to the socket. */
  write: (frame: string) => void;
  /** A frame is written early rather than grow past this many characters. Default unlimited. */
  maxFrameChars?: number;
  /** When the batch leaves. Default: after the current turn (setImmediate, else setTimeout 0). */
  schedule?: Scheduler;
}

/** Collects the messages of one turn and writes them as one frame. */
export class FrameBatcher {
  private texts: string[] = [];
  private chars = 0;
  private scheduled = false;
  private readonly write: (frame: string) => void;
  private readonly maxFrameChars: number;
  private readonly schedule: Scheduler;

  constructor(options: FrameBatcherOptions) {
    this.write = options.write;
    this.maxFrameChars = options.maxFrameChars ?? Infinity;
    this.schedule = options.schedule ?? defaultScheduler;
  }

  /** Queue one message (any JSON value with a `type`). */
  push(message: unknown): void {
    const text = JSON.stringify(message);
    if (this.texts.length > 0 && this.chars + text.length > this.maxFrameChars) this.flush();
    this.texts.push(text);
    this.chars += text.length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => { this.scheduled = false; this.flush(); });
    }
  }

  /** Write what is queued now. */
  flush(): void {
    if (this.texts.length === 0) return;
    const frame = encodeFrame(this.texts);
    this.texts = [];
    this.chars = 0;
    this.write(frame);
  }

  /** Forget what is queued (the socket is gone). */
  clear(): void {
    this.texts = [];
    this.chars = 0;
  }
}
