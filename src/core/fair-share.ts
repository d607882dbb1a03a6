/**
 * Fair sharing of workers between jobs and their owners: which jobs the next free slots go to.
 *
 * Priority comes first: slots go to the best priority that has a job able to take one. Within
 * a priority, a slot goes to the owner (API key) with the fewest tasks running, then, among that
 * owner's jobs, to the job with the fewest running tasks for its weight (running / weight),
 * then to the oldest. Filling slots one at a time this way is deficit round robin over
 * running tasks: two jobs of equal weight run as many tasks each, a job of weight 3 three times
 * as many as one of weight 1, and one owner with a hundred jobs as many as an owner with one.
 * Caps (`maxConcurrency` of a job or an owner) take a job out of the choice while reached, so a
 * capped job's tasks wait without holding a slot. Pure: the foreman keeps the counts.
 */

/**
 * The task types of a named job, read from its label (its types joined by ", " when it has at
 * most three); null when not known that way (more types, an open job whose later parts may
 * bring others, a map job).
 */
export function typesFromLabel(job: { kind: string; label: string | null; open: boolean }): string[] | null {
  if (job.kind === 'map' || job.open || !job.label || /\+\d+ more$/.test(job.label)) return null;
  return job.label.split(', ');
}

/** A job that may take slots, as the scheduler sees it now. */
export interface ShareJob {
  jobId: string;
  /** '' for jobs without an owner (submitted with authentication off): they share as one owner. */
  owner: string;
  /** Priority rank: 0 first. */
  rank: number;
  weight: number;
  /** Oldest first among equals: its submission order. */
  order: number;
  running: number;
  /** Tasks it could start now (an estimate: some may wait for a retry). */
  waiting: number;
  /** Infinity when uncapped. */
  maxConcurrency: number;
}

/** An owner's running tasks and cap (Infinity when uncapped). */
export interface ShareOwner {
  running: number;
  maxConcurrency: number;
}

/** A job in the running for slots: how many it has been given so far, and its load with them. */
interface Entry {
  job: ShareJob;
  given: number;
  load: number;
}

/** Before: less loaded, then older. */
const before = (a: Entry, b: Entry) => a.load < b.load || (a.load === b.load && a.job.order < b.job.order);

/** A binary min-heap of entries by load, then age: an owner's jobs, the next to serve on top. */
class JobHeap {
  private readonly items: Entry[] = [];
  get size(): number { return this.items.length; }
  peek(): Entry { return this.items[0]; }
  push(e: Entry): void {
    const a = this.items;
    a.push(e);
    for (let i = a.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }
  pop(): Entry {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * How many of `slots` each job gets, in the order they were first chosen. Jobs absent from
 * `owners` count as an owner with nothing running and no cap. Each slot costs a look at every
 * owner with work and a heap step among that owner's jobs, so thousands of small jobs cost
 * little more than one large one.
 */
export function allocateSlots(slots: number, jobs: readonly ShareJob[], owners: ReadonlyMap<string, ShareOwner>): { jobId: string; limit: number }[] {
  // By priority rank, then by owner: each owner's jobs in a heap.
  const bands = new Map<number, Map<string, JobHeap>>();
  for (const j of jobs) {
    if (j.waiting <= 0 || j.weight <= 0 || j.running >= j.maxConcurrency) continue;
    let band = bands.get(j.rank);
    if (!band) bands.set(j.rank, band = new Map());
    let heap = band.get(j.owner);
    if (!heap) band.set(j.owner, heap = new JobHeap());
    heap.push({ job: j, given: 0, load: j.running / j.weight });
  }
  const ownerGiven = new Map<string, number>();
  const out: { jobId: string; limit: number }[] = [];
  const at = new Map<string, number>();
  let left = slots;
  for (const rank of [...bands.keys()].sort((a, b) => a - b)) {
    const heaps = bands.get(rank)!;
    while (left > 0 && heaps.size > 0) {
      // The owner with the fewest tasks running (and room under its cap); among equals, the one
      // whose next job is the least loaded, then the oldest.
      let owner: string | null = null;
      let ownerRun = 0;
      for (const [key, heap] of heaps) {
        const o = owners.get(key);
        const run = (o?.running ?? 0) + (ownerGiven.get(key) ?? 0);
        if (o && run >= o.maxConcurrency) { heaps.delete(key); continue; }
        if (owner === null || run < ownerRun || (run === ownerRun && before(heap.peek(), heaps.get(owner)!.peek()))) {
          owner = key;
          ownerRun = run;
        }
      }
      if (owner === null) break;
      const heap = heaps.get(owner)!;
      const e = heap.pop();
      e.given++;
      left--;
      ownerGiven.set(owner, (ownerGiven.get(owner) ?? 0) + 1);
      const i = at.get(e.job.jobId);
      if (i === undefined) { at.set(e.job.jobId, out.length); out.push({ jobId: e.job.jobId, limit: 1 }); } else out[i].limit++;
      if (e.given < e.job.waiting && e.job.running + e.given < e.job.maxConcurrency) {
        e.load = (e.job.running + e.given) / e.job.weight;
        heap.push(e);
      }
      if (heap.size === 0) heaps.delete(owner);
    }
    if (left === 0) break;
  }
  return out;
}

/** A capped job's caps, as the store reads them under a lock. */
export interface JobCaps {
  owner: string | null;
  maxConcurrency: number | null;
  ownerMaxConcurrency: number | null;
}

/**
 * A plan cut to what the caps allow given what runs now (`running`: running tasks by job, with
 * each job's owner): the last word on caps, taken by the store where every foreman's running
 * tasks are counted. Jobs without an entry in `caps` keep their number.
 */
export function withinCaps<P extends { jobId: string; limit: number }>(plan: readonly P[], caps: ReadonlyMap<string, JobCaps>,
  running: readonly { jobId: string; owner: string | null; n: number }[]): P[] {
  const byJob = new Map<string, number>();
  const byOwner = new Map<string, number>();
  for (const r of running) {
    byJob.set(r.jobId, (byJob.get(r.jobId) ?? 0) + r.n);
    if (r.owner !== null) byOwner.set(r.owner, (byOwner.get(r.owner) ?? 0) + r.n);
  }
  const out: P[] = [];
  for (const p of plan) {
    const c = caps.get(p.jobId);
    let n = p.limit;
    if (c?.maxConcurrency != null) n = Math.min(n, c.maxConcurrency - (byJob.get(p.jobId) ?? 0));
    if (c?.ownerMaxConcurrency != null && c.owner !== null) n = Math.min(n, c.ownerMaxConcurrency - (byOwner.get(c.owner) ?? 0));
    if (n <= 0) continue;
    out.push({ ...p, limit: n });
    byJob.set(p.jobId, (byJob.get(p.jobId) ?? 0) + n);
    if (c?.owner != null) byOwner.set(c.owner, (byOwner.get(c.owner) ?? 0) + n);
  }
  return out;
}

/**
 * Each job's share of the running tasks if every job of the best priority with work kept
 * running (for display): owners share equally (as far as their caps allow), each owner's
 * share is split between its jobs by weight. Jobs of other priorities have a share of 0 while
 * a better priority has work.
 */
export function fairShares(jobs: readonly ShareJob[]): Map<string, number> {
  const out = new Map<string, number>();
  const active = jobs.filter((j) => (j.waiting > 0 || j.running > 0) && j.weight > 0);
  for (const j of jobs) out.set(j.jobId, 0);
  if (active.length === 0) return out;
  const rank = Math.min(...active.map((j) => j.rank));
  const band = active.filter((j) => j.rank === rank);
  const byOwner = new Map<string, ShareJob[]>();
  for (const j of band) byOwner.set(j.owner, [...(byOwner.get(j.owner) ?? []), j]);
  for (const list of byOwner.values()) {
    const total = list.reduce((a, j) => a + j.weight, 0);
    for (const j of list) out.set(j.jobId, j.weight / total / byOwner.size);
  }
  return out;
}
