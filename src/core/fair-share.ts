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

/**
 * How many of `slots` each job gets, in the order they were first chosen. Jobs absent from
 * `owners` count as an owner with nothing running and no cap.
 */
export function allocateSlots(slots: number, jobs: readonly ShareJob[], owners: ReadonlyMap<string, ShareOwner>): { jobId: string; limit: number }[] {
  const given = new Map<string, number>();
  const ownerGiven = new Map<string, number>();
  const open = jobs.filter((j) => j.waiting > 0 && j.weight > 0);
  const out: { jobId: string; limit: number }[] = [];
  for (let s = 0; s < slots; s++) {
    let best: ShareJob | null = null;
    let bestOwnerLoad = 0;
    let bestLoad = 0;
    for (const j of open) {
      const g = given.get(j.jobId) ?? 0;
      if (g >= j.waiting || j.running + g >= j.maxConcurrency) continue;
      const o = owners.get(j.owner);
      const og = ownerGiven.get(j.owner) ?? 0;
      const ownerRunning = (o?.running ?? 0) + og;
      if (o && ownerRunning >= o.maxConcurrency) continue;
      const load = (j.running + g) / j.weight;
      if (best === null || j.rank < best.rank || (j.rank === best.rank && (ownerRunning < bestOwnerLoad
        || (ownerRunning === bestOwnerLoad && (load < bestLoad || (load === bestLoad && j.order < best.order)))))) {
        best = j;
        bestOwnerLoad = ownerRunning;
        bestLoad = load;
      }
    }
    if (best === null) break;
    const g = given.get(best.jobId);
    if (g === undefined) out.push({ jobId: best.jobId, limit: 0 });
    given.set(best.jobId, (g ?? 0) + 1);
    ownerGiven.set(best.owner, (ownerGiven.get(best.owner) ?? 0) + 1);
  }
  for (const o of out) o.limit = given.get(o.jobId)!;
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
export function withinCaps(plan: readonly { jobId: string; limit: number }[], caps: ReadonlyMap<string, JobCaps>,
  running: readonly { jobId: string; owner: string | null; n: number }[]): { jobId: string; limit: number }[] {
  const byJob = new Map<string, number>();
  const byOwner = new Map<string, number>();
  for (const r of running) {
    byJob.set(r.jobId, (byJob.get(r.jobId) ?? 0) + r.n);
    if (r.owner !== null) byOwner.set(r.owner, (byOwner.get(r.owner) ?? 0) + r.n);
  }
  const out: { jobId: string; limit: number }[] = [];
  for (const p of plan) {
    const c = caps.get(p.jobId);
    let n = p.limit;
    if (c?.maxConcurrency != null) n = Math.min(n, c.maxConcurrency - (byJob.get(p.jobId) ?? 0));
    if (c?.ownerMaxConcurrency != null && c.owner !== null) n = Math.min(n, c.ownerMaxConcurrency - (byOwner.get(c.owner) ?? 0));
    if (n <= 0) continue;
    out.push({ jobId: p.jobId, limit: n });
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
