/**
 * When a schedule ticks: a cron expression read in a time zone, or a fixed interval aligned to
 * the Unix epoch. Pure: every function takes the instant it reasons from.
 *
 * Daylight-saving time follows Vixie cron, the rule cron users expect:
 * - A wall time that does not exist (the hour skipped when clocks go forward) fires once, at
 *   the moment of the jump (`30 2 * * *` in Europe/Paris on 2026-03-29 fires at 03:00 CEST),
 *   for a job at a fixed time. Several such wall times (`0,30 2 * * *`) fire once together.
 * - A wall time that happens twice (the hour repeated when clocks go back) fires once, the
 *   first time, for a job at a fixed time.
 * - A job whose minute or hour field is a wildcard (`*`, `*\/15`, `?`) runs on real time: in a
 *   skipped hour it has nothing to run, and in a repeated hour it runs in both passes, so an
 *   every-15-minutes job keeps its pace through both changes.
 *
 * To get there, croner computes the ticks of the expression on wall-clock time (the zone's
 * local time written as if it were UTC, where no hour is skipped or repeated), and each wall
 * time is mapped to the instants it names in the zone (Intl gives the offsets).
 */
import { Cron } from 'croner';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** How a schedule ticks: exactly one of `cron` and `everyMs`. */
export interface TickRule {
  cron: string | null;
  everyMs: number | null;
  /** IANA zone of the cron expression; `every` ignores it. */
  timezone: string;
}

const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/** Why a cron expression is refused (croner's reason, or the field count), or null when it parses. */
export function cronProblem(expression: string): string | null {
  const text = expression.trim();
  if (text.startsWith('@')) {
    return NICKNAMES.has(text.toLowerCase()) ? null : `"${text}" is not a cron nickname (@yearly, @monthly, @weekly, @daily, @hourly)`;
  }
  const fields = text.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) return `"${text}" has ${fields} fields; a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)`;
  try {
    new Cron(text, { paused: true, timezone: 'UTC' });
    return null;
  } catch (err) {
    return `"${text}" does not parse: ${(err as Error).message.replace(/^CronPattern: /, '')}`;
  }
}

/**
 * True when the expression's minute or hour field is a wildcard: Vixie cron runs such a job on
 * real time through daylight-saving changes, and a job at fixed times once per wall time.
 */
export function runsOnRealTime(expression: string): boolean {
  const text = expression.trim().toLowerCase();
  if (text.startsWith('@')) return text === '@hourly';
  const fields = text.split(/\s+/);
  const [minute, hour] = fields.length === 6 ? fields.slice(1, 3) : fields.slice(0, 2);
  return /^[*?]/.test(minute) || /^[*?]/.test(hour);
}

// ---------------------------------------------------------------- time zones

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at an instant, in ms (Europe/Paris in summer: +7,200,000). */
export function zoneOffset(instant: number, timezone: string): number {
  if (timezone === 'UTC' || timezone === 'Etc/UTC') return 0;
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timezone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(instant)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(instant / 1000) * 1000;
}

/** The wall-clock time of an instant in the zone, written as UTC milliseconds. */
export function wallTime(instant: number, timezone: string): number {
  return instant + zoneOffset(instant, timezone);
}

/**
 * The instants a wall time names in the zone, earliest first: one (most of the year), two
 * (a repeated hour), or none (a skipped hour: `gapEnd` is then the instant of the jump).
 */
export function instantsOf(wall: number, timezone: string): { instants: number[]; gapEnd: number | null } {
  const offsets = new Set([zoneOffset(wall - DAY_MS, timezone), zoneOffset(wall, timezone), zoneOffset(wall + DAY_MS, timezone)]);
  const instants = [...offsets].map((o) => wall - o).filter((i) => zoneOffset(i, timezone) === wall - i);
  const unique = [...new Set(instants)].sort((a, b) => a - b);
  if (unique.length > 0) return { instants: unique, gapEnd: null };
  // Skipped: the jump is the first instant whose wall time is past this one.
  let lo = wall - Math.max(...offsets);
  let hi = wall - Math.min(...offsets);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallTime(mid, timezone) >= wall) hi = mid; else lo = mid;
  }
  return { instants: [], gapEnd: hi };
}

// ---------------------------------------------------------------- ticks

const crons = new Map<string, Cron>();

function cronOf(expression: string): Cron {
  let c = crons.get(expression);
  if (!c) {
    // On wall-clock time written as UTC: croner never meets a skipped or repeated hour.
    c = new Cron(expression.trim(), { paused: true, timezone: 'UTC' });
    if (crons.size > 10_000) crons.clear();
    crons.set(expression, c);
  }
  return c;
}

/** The wall times (as UTC ms) of the expression after `wall`, strictly. */
function nextWall(c: Cron, wall: number): number | null {
  return c.nextRun(new Date(wall))?.getTime() ?? null;
}

/** The instants a wall tick fires at, by the daylight-saving rule above. */
function firesOf(wall: number, timezone: string, realTime: boolean): number[] {
  const { instants, gapEnd } = instantsOf(wall, timezone);
  if (gapEnd !== null) return realTime ? [] : [gapEnd];
  return realTime ? instants : instants.slice(0, 1);
}

/** The first tick of a cron expression in a zone strictly after `after`, or null (none ever: `0 0 30 2 *`). */
export function nextCronTick(expression: string, timezone: string, after: number): number | null {
  const c = cronOf(expression);
  if (timezone === 'UTC' || timezone === 'Etc/UTC') return nextWall(c, after);
  const realTime = runsOnRealTime(expression);
  // When clocks go back within the next hours, wall times before `after`'s own come again
  // after it: start that much earlier.
  const back = Math.max(0, zoneOffset(after, timezone) - zoneOffset(after + 3 * HOUR_MS, timezone));
  let wall = nextWall(c, wallTime(after, timezone) - back - 1);
  let best = Number.POSITIVE_INFINITY;
  // Wall ticks in order map to non-decreasing first instants: stop at the first past the best.
  for (let i = 0; wall !== null && i < 100_000; i++) {
    const fires = firesOf(wall, timezone, realTime);
    for (const f of fires) if (f > after && f < best) best = f;
    if (fires.length > 0 && fires[0] >= best) break;
    wall = nextWall(c, wall);
  }
  return Number.isFinite(best) ? best : null;
}

/** The first tick strictly after `after`, or null when the rule has no more. */
export function nextTick(rule: TickRule, after: number): number | null {
  if (rule.everyMs !== null) return (Math.floor(after / rule.everyMs) + 1) * rule.everyMs;
  return nextCronTick(rule.cron!, rule.timezone, after);
}

/** The next `n` ticks after `after`. */
export function nextTicks(rule: TickRule, after: number, n: number): number[] {
  const out: number[] = [];
  let t: number | null = after;
  while (out.length < n && (t = nextTick(rule, t)) !== null) out.push(t);
  return out;
}

/** The ticks t with from <= t < to, at most `limit` (and whether there were more). */
export function ticksBetween(rule: TickRule, from: number, to: number, limit: number): { ticks: number[]; more: boolean } {
  const ticks: number[] = [];
  let t = nextTick(rule, from - 1);
  while (t !== null && t < to) {
    if (ticks.length === limit) return { ticks, more: true };
    ticks.push(t);
    t = nextTick(rule, t);
  }
  return { ticks, more: false };
}

/**
 * How much later than its tick a tick fires: 0 to `jitterMs`, derived from the schedule's id
 * and the tick (FNV-1a), so that every foreman computes the same delay.
 */
export function jitterOf(scheduleId: string, tick: number, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  let h = 0x811c9dc5;
  const text = `${scheduleId}\u0000${tick}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % (jitterMs + 1);
}
