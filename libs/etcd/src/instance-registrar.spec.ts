import { encodeRecord, InstanceNotFoundError, InstanceRecord, KeyLayout } from '@app/registry';
import { InstanceDirectory } from './instance-directory';
import { InstanceRegistrar, RegistrarLeases } from './instance-registrar';
import type { RegistryStore, StoredInstance } from './registry-store';
import { LivenessTable } from './shared-leases/expiry-sweep';
import { leaseClassTtl } from './shared-leases/shared-lease-pool';

const layout = new KeyLayout('/r/');
const registration = { address: '10.0.0.1', port: 80, ttl: 30, metadata: {}, tags: [], weight: 100, status: 'UP' as const };

/** etcd as a map: Txn puts, compare-and-put, create-if-absent; every call recorded. */
class FakeStore {
  readonly layout = layout;
  readonly kv = new Map<string, StoredInstance>();
  readonly calls: string[] = [];
  revision = 10;

  async putMany(items: ReadonlyArray<{ key: string; value: string; leaseId: string }>) {
    this.calls.push(`txn:${items.length}`);
    const revision = String(++this.revision);
    return items.map((item) => {
      const previous = this.kv.get(item.key);
      this.kv.set(item.key, { ...item, modRevision: revision });
      return { revision, previous };
    });
  }

  async compareAndPut(key: string, value: string, leaseId: string, modRevision: string) {
    this.calls.push(`cas:${key}`);
    if (this.kv.get(key)?.modRevision !== modRevision) return { written: false, revision: String(this.revision) };
    const revision = String(++this.revision);
    this.kv.set(key, { key, value, leaseId, modRevision: revision });
    return { written: true, revision };
  }

  async putManyIfAbsent(items: ReadonlyArray<{ key: string; value: string; leaseId: string }>) {
    this.calls.push(`reput:${items.length}`);
    return items.map((item) => {
      if (this.kv.has(item.key)) return false;
      this.kv.set(item.key, { ...item, modRevision: String(++this.revision) });
      return true;
    });
  }

  async revokeLease(leaseId: string) {
    this.calls.push(`revoke:${leaseId}`);
  }

  async delete(key: string) {
    const previous = this.kv.get(key);
    this.kv.delete(key);
    return previous;
  }
}

function setup(lostLeaseInstances: Array<{ key: string; value: string }> = [], migrationsPerSecond = 100) {
  const store = new FakeStore();
  const directory = new InstanceDirectory(layout);
  directory.replace({ revision: '1', items: [] });
  const records = new Map<string, number>([['500', 120]]);
  const placed: number[] = [];
  const leases: RegistrarLeases = {
    place: async (ttl) => {
      placed.push(ttl);
      return { leaseId: '500', classTtl: 120, release: () => undefined };
    },
    classTtl: (ttl) => leaseClassTtl(ttl, 120),
    record: (leaseId) => (records.has(leaseId) ? { classTtl: records.get(leaseId)! } : undefined),
    hasRecord: (lease) => records.has(String(lease)),
    recordsKnown: true,
    invalid: () => undefined,
  };
  const liveness = new LivenessTable();
  const heard: string[] = [];
  const legacyHeard: string[] = [];
  const registrar = new InstanceRegistrar(store as unknown as RegistryStore, leases, {
    writeConcurrency: 4,
    writeQueueCapacity: 100,
    migrationsPerSecond,
    legacyHeard: (key, lease) => legacyHeard.push(`${key}@${lease}`),
    liveness,
    heard: (key) => heard.push(key),
    directory: {
      current: () => true,
      has: (key) => directory.has(key),
      leaseOf: (key) => directory.leaseOf(key),
      get: (key) => directory.get(key),
      written: (key, value, leaseId, now, modRevision) => directory.written(key, value, leaseId, now, modRevision),
      recentlyDeleted: () => undefined,
      instancesOn: () => lostLeaseInstances,
    },
  });
  return { store, directory, registrar, placed, liveness, heard, records, legacyHeard };
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe('InstanceRegistrar on shared leases', () => {
  it('registers with a Txn onto a placed shared lease, marks the pod heard, and learns the revision for expiry', async () => {
    const { store, directory, registrar, liveness, heard } = setup();
    const result = await registrar.register('orders', 'o1', registration);
    expect(result).toMatchObject({ leaseId: '500', created: true });
    expect(store.calls).toEqual(['txn:1']);
    const key = layout.instanceKey('orders', 'o1');
    expect(directory.get(key)).toMatchObject({ leaseId: '500', modRevision: result.revision });
    expect(liveness.lastHeard(key)).toBeGreaterThan(0);
    expect(heard).toEqual([key]);
  });

  it('re-registering with a TTL of the same class keeps the lease without taking a place; another class takes one', async () => {
    const { registrar, placed } = setup();
    await registrar.register('orders', 'o1', registration);
    await registrar.register('orders', 'o1', { ...registration, ttl: 45 });
    expect(placed).toEqual([30]);
    await registrar.register('orders', 'o1', { ...registration, ttl: 90 });
    expect(placed).toEqual([30, 90]);
  });

  it('answers a heartbeat from the directory (no etcd call), and 404 for an instance nobody knows', async () => {
    const { store, registrar } = setup();
    await registrar.register('orders', 'o1', registration);
    store.calls.length = 0;
    expect(registrar.heartbeatTracked('orders', 'o1')).toBe('accepted');
    await expect(registrar.heartbeat('orders', 'nobody')).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(store.calls).toEqual([]);
  });

  it('moves a legacy instance (a lease without a record) onto a shared lease at its heartbeat, then revokes its one-key lease', async () => {
    const { store, directory, registrar } = setup();
    const key = layout.instanceKey('orders', 'old');
    const value = encodeRecord({ ...registration, service: 'orders', id: 'old', registeredAt: '2026-01-01T00:00:00.000Z' } as InstanceRecord);
    store.kv.set(key, { key, value, leaseId: '77', modRevision: '5' });
    directory.written(key, value, '77', 0, '5');
    expect(registrar.heartbeatTracked('orders', 'old')).toBe('accepted');
    await flush();
    expect(store.calls).toEqual([`cas:${key}`, 'revoke:77']);
    expect(store.kv.get(key)).toMatchObject({ leaseId: '500', value });
    expect(directory.get(key)?.leaseId).toBe('500');
  });

  it('hands a legacy instance heard without migration budget to the legacy renewals, and not one it moves at this heartbeat', async () => {
    const { store, directory, registrar, legacyHeard } = setup([], 1);
    const keys = ['old1', 'old2'].map((id, i) => {
      const key = layout.instanceKey('orders', id);
      const value = encodeRecord({ ...registration, service: 'orders', id, registeredAt: '2026-01-01T00:00:00.000Z' } as InstanceRecord);
      store.kv.set(key, { key, value, leaseId: String(77 + i), modRevision: '5' });
      directory.written(key, value, String(77 + i), 0, '5');
      return key;
    });
    registrar.heartbeatTracked('orders', 'old1'); // takes the one token: moved
    registrar.heartbeatTracked('orders', 'old2'); // budget spent: its lease is renewed until a later heartbeat moves it
    await flush();
    expect(store.calls).toEqual([`cas:${keys[0]}`, 'revoke:77']);
    expect(legacyHeard).toEqual([`${keys[1]}@78`]);
    registrar.heartbeatTracked('orders', 'old1'); // on a shared lease now: nothing legacy about it
    expect(legacyHeard).toEqual([`${keys[1]}@78`]);
  });

  it('hands a legacy instance whose move did not happen (its compare lost) to the legacy renewals', async () => {
    const { store, directory, registrar, legacyHeard } = setup();
    const key = layout.instanceKey('orders', 'old');
    const value = encodeRecord({ ...registration, service: 'orders', id: 'old', registeredAt: '2026-01-01T00:00:00.000Z' } as InstanceRecord);
    store.kv.set(key, { key, value, leaseId: '77', modRevision: '6' });
    directory.written(key, value, '77', 0, '5'); // the directory has not seen revision 6 yet
    registrar.heartbeatTracked('orders', 'old');
    expect(legacyHeard).toEqual([]);
    await flush();
    expect(store.calls).toEqual([`cas:${key}`]);
    expect(legacyHeard).toEqual([`${key}@77`]);
  });

  it('re-puts the live instances of a lost lease in one batch, create-if-absent, and never a silent one', async () => {
    const items = ['a', 'b', 'c'].map((id) => ({
      key: layout.instanceKey('orders', id),
      value: encodeRecord({ ...registration, service: 'orders', id, registeredAt: '2026-01-01T00:00:00.000Z' } as InstanceRecord),
    }));
    const { store, registrar, liveness } = setup(items);
    const now = Date.now();
    liveness.heard(items[0].key, now);
    liveness.heard(items[1].key, now);
    liveness.heard(items[2].key, now - 60_000); // silent for twice its TTL
    registrar.rewriteLostLease({ id: '400', classTtl: 120, keys: 3, reserved: 0, renewedAt: 0 });
    await flush();
    expect(store.calls).toEqual(['reput:2']);
    expect([...store.kv.keys()].sort()).toEqual([items[0].key, items[1].key]);
  });
});
