import { KeyLayout } from '@app/registry';
import type { RegistryStore } from '../registry-store';
import type { GatewayEvent } from '../registry-watch';
import { PRESENCE_TTL_SECONDS } from '../liveness/replica-presence';
import { ADOPT_GRACE_MS, MIN_LEASE_TTL_SECONDS, SharedLeases } from './shared-leases';

const layout = new KeyLayout('/r/');

/** A store whose adoption compare-Txn succeeds only against the record revision it holds. */
function setup(replicaId: string, leaseTtlSeconds = 120) {
  let now = 1_000_000;
  const recordRevisions = new Map<string, string>();
  const adoptions: string[] = [];
  const store = {
    layout,
    grantSharedLease: async () => ({ leaseId: '900', recordRevision: '1' }),
    revokeLease: async () => undefined,
    adoptSharedLease: async (leaseId: string, _classTtl: number, _owner: string, revision: string) => {
      adoptions.push(leaseId);
      if (recordRevisions.get(leaseId) !== revision) return undefined;
      recordRevisions.set(leaseId, String(Number(revision) + 1));
      return recordRevisions.get(leaseId);
    },
  } as unknown as RegistryStore;
  const leases = new SharedLeases(store, [], { replicaId, leaseTtlSeconds, maxKeys: 1000, countKeys: () => 5, now: () => now }, { leaseLost: () => undefined, log: () => undefined });
  const record = (leaseId: string, owner: string, revision: number): GatewayEvent => {
    recordRevisions.set(leaseId, String(revision));
    return { type: 'put', kind: 'lease', id: leaseId, value: JSON.stringify({ owner, classTtl: 120 }), revision };
  };
  const replica = (id: string, type: 'put' | 'delete' = 'put'): GatewayEvent => ({ type, kind: 'replica', id, revision: 1 });
  return { leases, adoptions, record, replica, advance: (ms: number) => (now += ms), now: () => now };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('SharedLeases takeover', () => {
  it("splits a gone replica's leases between the survivors by hash, each adopting its share once the grace passed", async () => {
    const a = setup('aa');
    const b = setup('bb');
    const records = Array.from({ length: 20 }, (_, i) => String(1000 + i));
    for (const side of [a, b]) {
      side.leases.resyncGateway({ revision: '1', items: [] });
      side.leases.applyGatewayEvents([side.replica('aa'), side.replica('bb'), side.replica('cc'), ...records.map((id, i) => side.record(id, 'cc', 10 + i))]);
      side.leases.applyGatewayEvents([side.replica('cc', 'delete')]);
      side.leases.tick();
    }
    await flush();
    expect(a.adoptions).toHaveLength(0);
    a.advance(3_000);
    b.advance(3_000);
    a.leases.tick();
    b.leases.tick();
    await flush();
    // Every lease adopted exactly once, by one of the two, and both took some.
    expect([...a.adoptions, ...b.adoptions].sort()).toEqual(records);
    expect(a.adoptions.length).toBeGreaterThan(0);
    expect(b.adoptions.length).toBeGreaterThan(0);
    for (const id of a.adoptions) expect(a.leases.owns(id)).toBe(true);
    expect(a.leases.stats().adopted).toBe(a.adoptions.length);
  });

  it('a replica that comes back stops renewing the leases another replica adopted', async () => {
    const { leases, record, replica } = setup('aa');
    leases.resyncGateway({ revision: '1', items: [] });
    leases.applyGatewayEvents([replica('aa')]);
    const place = await leases.place(30);
    expect(leases.owns(place.leaseId)).toBe(true);
    leases.applyGatewayEvents([record(place.leaseId, 'bb', 99)]);
    expect(leases.owns(place.leaseId)).toBe(false);
  });

  it("adopts a SIGKILLed owner's lease of the shortest class (MIN_LEASE_TTL_SECONDS) before it can lapse", async () => {
    const { leases, adoptions, record, replica, advance, now } = setup('bb', MIN_LEASE_TTL_SECONDS);
    leases.resyncGateway({ revision: '1', items: [] });
    leases.applyGatewayEvents([replica('aa'), replica('bb'), record('1000', 'aa', 10)]);
    // Worst case: the owner renewed the lease (class = LEASE_TTL) a third of its class and a tick before it died.
    const renewedAt = now();
    advance((MIN_LEASE_TTL_SECONDS * 1000) / 3 + 1_000);
    // Its presence key lapses PRESENCE_TTL_SECONDS later (+ etcd's 0.5 s lessor pass).
    advance(PRESENCE_TTL_SECONDS * 1000 + 500);
    leases.applyGatewayEvents([replica('aa', 'delete')]);
    while (adoptions.length === 0 && now() - renewedAt < MIN_LEASE_TTL_SECONDS * 1000) {
      advance(1_000);
      leases.tick();
      await flush();
    }
    expect(leases.owns('1000')).toBe(true);
    // Adopted (and renewed at once) with time to spare before etcd would expire the lease.
    expect(MIN_LEASE_TTL_SECONDS * 1000 - (now() - renewedAt)).toBeGreaterThanOrEqual(4_000);
    expect(now() - renewedAt).toBeLessThanOrEqual((MIN_LEASE_TTL_SECONDS * 1000) / 3 + 1_000 + PRESENCE_TTL_SECONDS * 1000 + 500 + ADOPT_GRACE_MS + 1_000);
  });

  it('refuses a LEASE_TTL shorter than MIN_LEASE_TTL_SECONDS', () => {
    expect(() => setup('aa', MIN_LEASE_TTL_SECONDS - 1)).toThrow(/LEASE_TTL must be an integer of at least 30 s/);
    expect(() => setup('aa', 45.5)).toThrow(/LEASE_TTL/);
  });
});
