import { CrowdComputeError, type JobAppendView, type NamedTaskSpec } from '../protocol/index.ts';
import type { JobHandle } from './job-handle.ts';

/** Most items (tasks or arguments) in one appended part. */
export const PART_MAX_ITEMS = 10_000;
/** About how many bytes of JSON one appended part holds at most. */
export const PART_MAX_BYTES = 2 * 1024 * 1024;

/** How an open job sends its parts: POST /api/jobs/{id}/tasks, with the client's retries. @internal */
export type SendPart = (jobId: string, body: { tasks?: NamedTaskSpec[]; args?: unknown[]; at: number; seal?: boolean }) => Promise<JobAppendView>;

/**
 * A job submitted open: its tasks (or, for a map job, its arguments) are appended in parts, so
 * a job of any size goes to the foreman without raising a message limit, and its first tasks
 * run while the rest is still being sent. `append` buffers and sends whole parts (for a map
 * job, whole chunks); `seal` sends what is left and says the job is complete. Each part says
 * where it starts, so a part retried after a lost answer is appended once.
 */
export class OpenJob<R = unknown, T = unknown> {
  /** The job: await its results, follow its progress, cancel it. */
  readonly handle: JobHandle<R>;
  private readonly kind: 'map' | 'tasks';
  private readonly unit: number;
  private readonly send: SendPart;
  private buffer: T[] = [];
  private bufferBytes = 0;
  /** Items the foreman has (the next part's `at`). */
  private sent: number;
  private chain: Promise<void> = Promise.resolve();
  private sealed = false;

  /** @internal */
  constructor(handle: JobHandle<R>, kind: 'map' | 'tasks', options: { chunkSize: number; initial: number; send: SendPart }) {
    this.handle = handle;
    this.kind = kind;
    // A map job's parts are whole chunks, so each task keeps its place in the results.
    this.unit = kind === 'map' ? options.chunkSize : 1;
    this.sent = options.initial;
    this.send = options.send;
  }

  get id(): string { return this.handle.id; }

  /** Items appended so far (sent or buffered). */
  get count(): number { return this.sent + this.buffer.length; }

  /**
   * Add tasks (a `tasks` job) or arguments (a map job). Full parts are sent as they fill; the
   * promise resolves when those are committed. Items are sent in order.
   */
  async append(items: Iterable<T>): Promise<void> {
    if (this.sealed) throw new CrowdComputeError('CC_ERR_JOB_SEALED', `job ${this.id} was sealed by this client: it takes no more ${this.kind === 'map' ? 'arguments' : 'tasks'}`, { jobId: this.id });
    for (const item of items) {
      this.buffer.push(item);
      this.bufferBytes += JSON.stringify(item ?? null).length + 1;
      if (this.buffer.length >= PART_MAX_ITEMS || this.bufferBytes >= PART_MAX_BYTES) this.sendBuffered(false);
    }
    await this.chain;
  }

  /** Send what is buffered now (for a map job, its whole chunks), without waiting for a part to fill. */
  async flush(): Promise<void> {
    if (!this.sealed) this.sendBuffered(false);
    await this.chain;
  }

  /** Send what is buffered and seal the job: it finishes when its tasks do. Resolves with its handle. */
  async seal(): Promise<JobHandle<R>> {
    if (!this.sealed) {
      this.sealed = true;
      this.sendBuffered(true);
    }
    await this.chain;
    return this.handle;
  }

  /** Queue a part of the buffer: whole units only unless it is the last. */
  private sendBuffered(last: boolean): void {
    const n = last ? this.buffer.length : this.buffer.length - (this.buffer.length % this.unit);
    if (n === 0 && !last) return;
    const items = this.buffer.splice(0, n);
    this.bufferBytes = this.buffer.reduce((s, x) => s + JSON.stringify(x ?? null).length + 1, 0);
    const at = this.sent;
    this.sent += items.length;
    // Parts go one after the other: each starts where the one before ended.
    this.chain = this.chain.then(() => this.sendPart(items, at, last));
  }

  /**
   * Send one part; a foreman that takes fewer items in one message (its --max-args, or its
   * --max-payload for the whole body) gets it in smaller parts, each of whole units.
   */
  private async sendPart(items: T[], at: number, last: boolean): Promise<void> {
    const body = { ...(this.kind === 'map' ? { args: items } : { tasks: items as NamedTaskSpec[] }), at, ...(last ? { seal: true } : {}) };
    try {
      await this.send(this.id, body);
    } catch (err) {
      const limit = err instanceof CrowdComputeError ? smallerPart(err, items.length, this.unit) : null;
      if (limit === null) throw err;
      for (let i = 0; i < items.length; i += limit) {
        const piece = items.slice(i, i + limit);
        await this.sendPart(piece, at + i, last && i + limit >= items.length);
      }
    }
  }
}

/** How many items to send at once after `err` refused a part of `size`, or null when smaller parts would not help. */
function smallerPart(err: CrowdComputeError, size: number, unit: number): number | null {
  const limit = (err.details as { limit?: unknown } | undefined)?.limit;
  let n: number;
  if (err.code === 'CC_ERR_INVALID_JOB' && typeof limit === 'number' && limit < size) n = limit;
  else if (err.code === 'CC_ERR_PAYLOAD_TOO_LARGE' && /body/i.test(err.message)) n = Math.floor(size / 2);
  else return null;
  n -= n % unit;
  return n >= unit && n < size ? n : null;
}
