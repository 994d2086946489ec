import { encodeRecord, InstanceRecord } from '@app/registry';
import type { ExpiryVerdict } from '../liveness/heard-sets';
import type { GuardedDelete } from '../registry-store';
import { ExpirySweep, LivenessTable } from './expiry-sweep';

const T0 = 1_000_000;
const valueOf = (id: string, ttl: number) =>
  encodeRecord({ service: 's', id, address: '10.0.0.1', port: 80, ttl, metadata: {}, tags: [], weight: 100, status: 'UP', registeredAt: '2026-01-01T00:00:00.000Z' } as InstanceRecord);

/** Instances on leases, an exchange answering from a map, deletes recorded (and refused for a changed revision). */
function setup(options: { instances: number; ttl?: number; selfPreservation?: { threshold: number; maxMs: number } }) {
  let now = T0;
  const ttl = options.ttl ?? 10;
  const instances = new Map<string, { leaseId: string; modRevision: string }>();
  for (let i = 0; i < options.instances; i++) instances.set(`/r/services/s/i${i}`, { leaseId: '7', modRevision: String(100 + i) });
  const heardElsewhere = new Map<string, number>();
  let gap = false;
  const deletes: GuardedDelete[][] = [];
  const liveness = new LivenessTable();
  const sweep = new ExpirySweep(
    liveness,
    {
      ownedLeases: () => new Set(['7']),
      responsibleSince: () => T0,
      fence: (leaseId) => ({ key: `/r/gateway/leases/${leaseId}`, modRevision: '50' }),
      instancesOn: (_leases, visit) => {
        for (const [key, i] of instances) visit(key, i.leaseId, i.modRevision, valueOf(key, ttl), 0);
      },
      exchange: {
        refresh: async () => undefined,
        verdict: (key, ttlMs, lastHeard, at): ExpiryVerdict => {
          if (Math.max(lastHeard, heardElsewhere.get(key) ?? 0) > at - ttlMs) return { expire: false, reason: 'heard' };
          return gap ? { expire: false, reason: 'gap' } : { expire: true };
        },
      },
      presentReplicas: () => ['a', 'b'],
      deleteIfUnchanged: async (items) => {
        deletes.push([...items]);
        return items.map((item) => {
          const current = instances.get(item.key);
          if (!current || current.modRevision !== item.modRevision) return false;
          instances.delete(item.key);
          return true;
        });
      },
    },
    { passMs: 2_000, selfPreservation: options.selfPreservation, now: () => now },
    { log: () => undefined },
  );
  return {
    sweep,
    liveness,
    instances,
    deletes,
    heardElsewhere,
    setGap: (on: boolean) => (gap = on),
    at: (ms: number) => (now = T0 + ms),
  };
}

describe('ExpirySweep', () => {
  it('deletes an instance no replica heard for its TTL on the next pass, fenced by the lease record, never earlier', async () => {
    const { sweep, liveness, instances, deletes, at } = setup({ instances: 2 });
    liveness.heard('/r/services/s/i0', T0 + 5_000);
    liveness.heard('/r/services/s/i1', T0 + 5_000);
    at(14_000);
    await sweep.pass();
    expect(deletes).toHaveLength(0);
    at(15_500);
    liveness.heard('/r/services/s/i1', T0 + 15_000);
    await sweep.pass();
    expect(deletes).toEqual([[{ key: '/r/services/s/i0', modRevision: '100', fence: { key: '/r/gateway/leases/7', modRevision: '50' } }]]);
    expect([...instances.keys()]).toEqual(['/r/services/s/i1']);
    expect(sweep.stats.expired).toBe(1);
  });

  it('counts an instance never heard here from when this replica became responsible, never earlier', async () => {
    const { sweep, deletes, at } = setup({ instances: 1 });
    at(9_000);
    await sweep.pass();
    expect(deletes).toHaveLength(0);
    at(10_000);
    await sweep.pass();
    expect(deletes).toHaveLength(1);
  });

  it('never deletes an instance another replica heard', async () => {
    const { sweep, heardElsewhere, deletes, at } = setup({ instances: 1 });
    heardElsewhere.set('/r/services/s/i0', T0 + 19_000);
    at(20_000);
    await sweep.pass();
    expect(deletes).toHaveLength(0);
    expect(sweep.stats.overdue).toBe(1);
  });

  it('pauses while the exchange has a gap (metric and readiness read it) and resumes after', async () => {
    const { sweep, deletes, setGap, at } = setup({ instances: 3 });
    setGap(true);
    at(30_000);
    await sweep.pass();
    expect(deletes).toHaveLength(0);
    expect(sweep.stats).toMatchObject({ paused: true, overdue: 3 });
    setGap(false);
    at(32_000);
    await sweep.pass();
    expect(sweep.stats.paused).toBe(false);
    expect(deletes.flat()).toHaveLength(3);
  });

  it('a rewritten instance survives (its mod_revision moved before the delete)', async () => {
    const { sweep, instances, at } = setup({ instances: 1 });
    at(20_000);
    const original = sweep.pass();
    instances.set('/r/services/s/i0', { leaseId: '7', modRevision: '999' });
    await original;
    expect(instances.has('/r/services/s/i0')).toBe(true);
    expect(sweep.stats.expired).toBe(0);
  });

  it('self-preservation holds deletes when more than the threshold goes silent at once', async () => {
    const { sweep, liveness, deletes, at } = setup({ instances: 20, selfPreservation: { threshold: 0.5, maxMs: 60_000 } });
    for (let i = 0; i < 8; i++) liveness.heard(`/r/services/s/i${i}`, T0 + 29_000);
    at(30_000);
    await sweep.pass();
    expect(sweep.stats.selfPreservation).toBe(true);
    expect(deletes).toHaveLength(0);
  });

  it('self-preservation counts only instances no replica heard: pods heartbeating through other replicas are not silent', async () => {
    // Node agents behind a load balancer: most of this owner's pods are heard by the other replicas only.
    const { sweep, liveness, heardElsewhere, deletes, at } = setup({ instances: 20, selfPreservation: { threshold: 0.5, maxMs: 60_000 } });
    for (let i = 0; i < 4; i++) liveness.heard(`/r/services/s/i${i}`, T0 + 29_000);
    for (let i = 4; i < 18; i++) heardElsewhere.set(`/r/services/s/i${i}`, T0 + 29_000);
    at(30_000);
    await sweep.pass();
    expect(sweep.stats.overdue).toBe(16);
    expect(sweep.stats.selfPreservation).toBe(false);
    expect(deletes.flat().map((d) => d.key)).toEqual(['/r/services/s/i18', '/r/services/s/i19']);
  });
});
