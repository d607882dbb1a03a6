import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '../../core/access.ts';
import type { ShareView } from '../shared/share-view.ts';
import { sharingPicture, statsFor, type StatsPicture } from './stats-view.ts';

const key = (keyId: string, ...scopes: ('read' | 'submit' | 'admin')[]): Principal => ({ kind: 'key', keyId, name: null, scopes });

/**
 * The scheduler's view of `jobs` per owner ({owner: [running, waiting] per job}), largest
 * running first as the ledger gives it; every job's share is its running out of all.
 */
function ledger(jobs: Record<string, [number, number][]>): ShareView {
  const all = Object.entries(jobs).flatMap(([owner, list]) => list.map(([running, waiting], i) => ({ owner, running, waiting, jobId: `${owner}-job-${i}` })));
  const running = all.reduce((a, j) => a + j.running, 0) || 1;
  const rows = all.map((j) => ({ jobId: j.jobId, owner: j.owner, priority: 'normal', weight: 1, maxConcurrency: null, running: j.running, waiting: j.waiting, share: j.running / running }))
    .sort((a, b) => b.running - a.running);
  return {
    owners: Object.keys(jobs).map((owner) => {
      const mine = rows.filter((j) => j.owner === owner);
      return { owner, running: mine.reduce((a, j) => a + j.running, 0), waiting: mine.reduce((a, j) => a + j.waiting, 0), share: mine.reduce((a, j) => a + j.share, 0), maxConcurrency: null, jobs: mine.length };
    }),
    jobs: rows,
    rateLimits: [],
  };
}

const picture = (v: ShareView): StatsPicture => ({ counts: { total_jobs: 7 } as StatsPicture['counts'], ...sharingPicture(v) });

test('an admin and --insecure see every owner and the first hundred jobs, with nothing summed away', () => {
  const p = picture(ledger({ alice: Array.from({ length: 120 }, () => [1, 0]), bob: [[50, 5]] }));
  for (const who of [key('root', 'admin'), { kind: 'insecure' } as const]) {
    const { sharing, total_jobs } = statsFor(p, who);
    assert.equal(total_jobs, 7, 'the counts are everyone\'s');
    assert.deepEqual(sharing.owners.map((o) => o.owner).sort(), ['alice', 'bob']);
    assert.equal(sharing.jobs.length, 100);
    assert.equal(sharing.jobs[0].job_id, 'bob-job-0', 'largest running first');
    assert.equal(sharing.others, null);
  }
});

test('another key sees its own owner row and jobs, even outside the first hundred, and the other owners only as totals', () => {
  const p = picture(ledger({ alice: [[1, 2], [0, 4]], bob: Array.from({ length: 150 }, () => [2, 1]), carol: [[3, 0]] }));
  const { sharing, total_jobs } = statsFor(p, key('alice', 'read'));
  assert.equal(total_jobs, 7);
  assert.deepEqual(sharing.owners.map((o) => [o.owner, o.running, o.waiting, o.jobs]), [['alice', 1, 6, 2]]);
  assert.deepEqual(sharing.jobs.map((j) => [j.job_id, j.running, j.waiting]), [['alice-job-0', 1, 2], ['alice-job-1', 0, 4]]);
  assert.deepEqual({ ...sharing.others!, share: undefined }, { owners: 2, jobs: 151, running: 303, waiting: 150, share: undefined });
  assert.ok(Math.abs(sharing.others!.share - 303 / 304) < 1e-3, `the others' shares together (${sharing.others!.share})`);
  const text = JSON.stringify(sharing);
  assert.ok(!/bob|carol/.test(text), `no other owner's key or job id: ${text.slice(0, 300)}`);
});

test('a key with more than a hundred jobs of its own sees the hundred running the most', () => {
  const p = picture(ledger({ alice: Array.from({ length: 130 }, (_, i) => [i < 10 ? 2 : 0, 1]), bob: [[9, 9]] }));
  const { sharing } = statsFor(p, key('alice', 'read', 'submit'));
  assert.equal(sharing.jobs.length, 100);
  assert.ok(sharing.jobs.slice(0, 10).every((j) => j.running === 2));
  assert.deepEqual(sharing.owners.map((o) => o.jobs), [130], 'its owner row counts all of them');
});

test('a key with no unfinished job sees no owner row, no jobs, and everyone as others', () => {
  const p = picture(ledger({ bob: [[2, 3]], carol: [[1, 0], [0, 2]] }));
  const { sharing } = statsFor(p, key('dave', 'read'));
  assert.deepEqual([sharing.owners, sharing.jobs], [[], []]);
  assert.deepEqual(sharing.others, { owners: 2, jobs: 3, running: 3, waiting: 5, share: 1 });
  assert.deepEqual(statsFor(picture(ledger({})), key('dave', 'read')).sharing.others, { owners: 0, jobs: 0, running: 0, waiting: 0, share: 0 });
});
