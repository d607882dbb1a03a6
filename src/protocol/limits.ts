/**
 * Bounds of numeric options, and the one wording every refusal of one uses:
 * `--lease-ttl must be at most 86400000 ms (24 h)`. The foreman's and the worker's options, the
 * CLI's flags and the protocol's job options all check their numbers here, so a number nobody
 * would mean (a deadline past what a JavaScript timer can hold, a chunk of a billion arguments)
 * is refused where it is given, naming the option and the limit, instead of misbehaving later.
 * The limits themselves are chosen far beyond real use; docs/operations.md lists them.
 */

/** What a bounded number counts: milliseconds, bytes, mebibytes, or plain things. */
export type BoundUnit = 'ms' | 'bytes' | 'MiB' | 'count';

/** The range a numeric option may take. */
export interface Bound {
  min: number;
  max: number;
  /** Default `count`. */
  unit?: BoundUnit;
  /** Fractions allowed (a job's weight); default whole numbers only. */
  fractional?: boolean;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** Durations and sizes for writing limits down readably. */
export const UNITS = { SECOND, MINUTE, HOUR, DAY, KiB, MiB, GiB, TiB } as const;

/**
 * The longest deadline a task may have: 24 days. A JavaScript timer holds at most 2^31 − 1 ms
 * (24.8 days); a longer one fires at once, which would end every such task as timed out.
 */
export const MAX_TIMER_MS = 24 * DAY;

/** A duration for people: `24 h`, `7 d`, `90 s`, `250 ms`. */
export function formatDuration(ms: number): string {
  if (ms >= 2 * DAY && ms % DAY === 0) return `${ms / DAY} d`;
  if (ms >= HOUR && ms % HOUR === 0) return `${ms / HOUR} h`;
  if (ms >= MINUTE && ms % MINUTE === 0) return `${ms / MINUTE} min`;
  if (ms >= SECOND && ms % SECOND === 0) return `${ms / SECOND} s`;
  if (ms >= SECOND) return `${(ms / SECOND).toFixed(1)} s`;
  return `${ms} ms`;
}

/** A size for people, in the largest whole binary unit: `512 MiB`, `1 TiB`, `1.5 KiB`. */
function formatSize(bytes: number): string {
  for (const [unit, size] of [['TiB', TiB], ['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** An amount as a limit is quoted: the number as given, then what it means when that helps (`86400000 ms (24 h)`). */
export function describeAmount(n: number, unit: BoundUnit = 'count'): string {
  switch (unit) {
    case 'ms': return n >= SECOND ? `${n} ms (${formatDuration(n)})` : `${n} ms`;
    case 'bytes': return n >= KiB ? `${n} bytes (${formatSize(n)})` : `${n} bytes`;
    case 'MiB': return `${n} MiB`;
    default: return String(n);
  }
}

/** What is wrong with `value` for this bound (`must be at most 100`), or null when it fits. */
export function boundProblem(value: unknown, bound: Bound): string | null {
  if (typeof value !== 'number' || Number.isNaN(value)) return `must be a number, not ${JSON.stringify(value) ?? String(value)}`;
  if (!bound.fractional && Number.isFinite(value) && !Number.isInteger(value)) return `must be a whole number, not ${value}`;
  if (value < bound.min) return `must be at least ${describeAmount(bound.min, bound.unit)}`;
  if (value > bound.max) return `must be at most ${describeAmount(bound.max, bound.unit)}`;
  return null;
}

/** Throw a RangeError naming the option and its limit when `value` is out of bounds: `--lease-ttl must be at most 86400000 ms (24 h)`. */
export function checkBound(name: string, value: unknown, bound: Bound): void {
  const problem = boundProblem(value, bound);
  if (problem) throw new RangeError(`${name} ${problem}`);
}

/** A job's name, for people: at most this many characters. */
export const JOB_NAME_MAX = 200;

/**
 * The numeric options of a job and of its tasks, on every way in (WebSocket, REST, SDK, CLI).
 * Beyond these a submission is refused with CC_ERR_BAD_MESSAGE / CC_ERR_INVALID_JOB naming the field.
 */
export const JOB_LIMITS = {
  /** A task's deadline: up to 24 days (see {@link MAX_TIMER_MS}). */
  timeoutMs: { min: 1, max: MAX_TIMER_MS, unit: 'ms' },
  /** How long a task may wait for a worker: up to a year. */
  queueTimeoutMs: { min: 1, max: 365 * DAY, unit: 'ms' },
  /** How long a finished job is kept: up to ten years. */
  retentionMs: { min: 0, max: 3_650 * DAY, unit: 'ms' },
  /** Attempts per task. */
  maxAttempts: { min: 1, max: 100 },
  /** A job's share of the workers against its owner's other jobs. */
  weight: { min: 0.01, max: 1_000, fractional: true },
  /** Tasks of one job (or one key's jobs) running at once. */
  maxConcurrency: { min: 1, max: 1_000_000 },
  /** Arguments per task of a map job. */
  chunkSize: { min: 1, max: 1_000_000 },
} as const satisfies Record<string, Bound>;

/** What a worker may say it has, and a task may require: CPU cores, memory (MiB), GPUs. */
export const RESOURCE_LIMITS = {
  cpu: { min: 0, max: 100_000, fractional: true },
  memoryMb: { min: 0, max: 1e9, unit: 'MiB', fractional: true },
  gpu: { min: 0, max: 10_000 },
} as const satisfies Record<string, Bound>;

/** Tasks one worker runs at once (its hello's capacity, `--concurrency`). */
export const CAPACITY_LIMIT = { min: 1, max: 10_000 } as const satisfies Bound;
