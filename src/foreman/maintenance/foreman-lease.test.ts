import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { PROTOCOL_VERSION, type Hello } from '../../protocol/index.ts';
import { StoreHealth } from '../shared/store-health.ts';
import { ForemanLease } from './foreman-lease.ts';
import { foremanParts, RecordingPeer } from '../../../test/support/foreman-parts.ts';

const hello = (workerId: string): Hello => ({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId, capacity: 1, patterns: ['t.*'], allowCode: false });

test('a foreman taken for gone while it lived records its connected workers online again at its next renewal; others\' dead workers go offline', async () => {
  const parts = await foremanParts({ startDispatcher: false });
  const log = pino({ level: 'silent' });
  const lease = new ForemanLease({ store: parts.store, registry: parts.registry, health: new StoreHealth(parts.metrics, log) }, { foremanId: 'f-test', leaseMs: 10_000 }, log);
  const states = async () => Object.fromEntries((await parts.store.workerList()).map((w) => [w.id, `${w.state}@${w.foremanId}`]));
  try {
    const t0 = Date.now();
    await lease.take(t0);
    await parts.registry.admit(new RecordingPeer(), hello('mine'));
    // A worker of a foreman that holds no lease (it died before this one started).
    await parts.store.workerUpsert({ id: 'theirs', state: 'online', capacity: 1, patterns: [], allowCode: false, resources: {}, version: null, foremanId: 'f-dead', connectedAt: t0, lastSeenAt: t0 });

    // Another foreman reaps past this one's lease (this one paused longer than its lease).
    await parts.store.foremanReapLapsed({ now: t0 + 20_000 });
    assert.deepEqual(await states(), { mine: 'offline@f-test', theirs: 'offline@f-dead' });

    // Its next round finds its lease gone and records its worker online again.
    await lease.runNow(t0 + 21_000);
    assert.deepEqual(await states(), { mine: 'online@f-test', theirs: 'offline@f-dead' });
    // Its lease holds again: the next reap leaves its worker alone.
    await parts.store.foremanReapLapsed({ now: t0 + 22_000 });
    assert.equal((await states()).mine, 'online@f-test');

    // Stopping ends the lease: what is still recorded online here goes offline.
    await lease.stop();
    assert.equal((await states()).mine, 'offline@f-test');
    await lease.stop();
  } finally {
    await parts.close();
  }
});
