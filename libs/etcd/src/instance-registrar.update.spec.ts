import { EtcdLeaseInvalidError } from 'etcd3';
import { decodeRecord, encodeRecord, InstanceNotFoundError, InstanceRecord, KeyLayout, UpdateConflictError } from '@app/registry';
import { InstanceRegistrar } from './instance-registrar';
import { InstanceDirectory } from './instance-directory';
import { LivenessTable } from './shared-leases/expiry-sweep';
import { RegistryStore, StoredInstance } from './registry-store';

const layout = new KeyLayout('/registry/');
const key = layout.instanceKey('orders', 'o1');
const record: InstanceRecord = {
  service: 'orders',
  id: 'o1',
  address: '10.0.0.1',
  port: 80,
  ttl: 30,
  metadata: { version: '1' },
  tags: ['a'],
  weight: 100,
  status: 'UP',
  registeredAt: '2026-01-01T00:00:00.000Z',
};

/** The two RegistryStore calls updateInstance makes, over one key held in memory. */
class FakeStore {
  readonly layout = layout;
  current: StoredInstance | undefined = { key, value: encodeRecord(record), leaseId: '77', modRevision: '5' };
  /** Concurrent writers that slip in between a read and the compare-and-swap. */
  interleavedWrites = 0;
  leaseGone = false;
  puts: Array<{ leaseId: string; modRevision: string }> = [];

  async get(): Promise<StoredInstance | undefined> {
    return this.current && { ...this.current };
  }

  async compareAndPut(_key: string, value: string, leaseId: string, modRevision: string): Promise<{ written: boolean; revision: string }> {
    this.puts.push({ leaseId, modRevision });
    if (this.leaseGone) throw new EtcdLeaseInvalidError(leaseId);
    if (this.interleavedWrites > 0) {
      this.interleavedWrites--;
      this.current = { ...this.current!, modRevision: String(Number(this.current!.modRevision) + 1) };
      return { written: false, revision: this.current.modRevision };
    }
    if (this.current?.modRevision !== modRevision) return { written: false, revision: '0' };
    this.current = { key, value, leaseId, modRevision: String(Number(modRevision) + 1) };
    return { written: true, revision: this.current.modRevision };
  }
}

function setup() {
  const store = new FakeStore();
  const directory = new InstanceDirectory(layout);
  const leases = { place: () => Promise.reject(new Error('no grants here')), classTtl: () => 120, record: () => undefined, hasRecord: () => false, recordsKnown: false, invalid: () => undefined };
  const registrar = new InstanceRegistrar(store as unknown as RegistryStore, leases, {
    writeConcurrency: 4,
    writeQueueCapacity: 4,
    migrationsPerSecond: 1,
    liveness: new LivenessTable(),
    directory: {
      current: () => true,
      has: (k) => directory.has(k),
      leaseOf: (k) => directory.leaseOf(k),
      get: (k) => directory.get(k),
      written: (k, value, leaseId, now, modRevision) => directory.written(k, value, leaseId, now, modRevision),
      recentlyDeleted: () => undefined,
      instancesOn: () => [],
    },
  });
  return { store, registrar, directory };
}

describe('InstanceRegistrar.updateInstance', () => {
  it('rewrites status and metadata under the same lease and updates the value a re-put would write', async () => {
    const { store, registrar, directory } = setup();
    directory.written(key, store.current!.value, '77', 0, '5');
    const { record: updated, revision } = await registrar.updateInstance('orders', 'o1', { status: 'DRAINING', metadata: { version: '2' } });
    expect(updated).toMatchObject({ status: 'DRAINING', metadata: { version: '2' }, tags: ['a'], registeredAt: record.registeredAt });
    expect(revision).toBe('6');
    expect(store.puts).toEqual([{ leaseId: '77', modRevision: '5' }]);
    expect(decodeRecord(directory.latest(key)!)).toMatchObject({ status: 'DRAINING', metadata: { version: '2' } });
    expect(directory.get(key)).toMatchObject({ leaseId: '77', modRevision: '6' });
  });

  it('keeps the metadata when the patch has none', async () => {
    const { registrar } = setup();
    const { record: updated } = await registrar.updateInstance('orders', 'o1', { status: 'DOWN' });
    expect(updated.metadata).toEqual({ version: '1' });
  });

  it('retries when the instance changed between read and write, then reports a conflict', async () => {
    const { store, registrar } = setup();
    store.interleavedWrites = 2;
    await expect(registrar.updateInstance('orders', 'o1', { status: 'DOWN' })).resolves.toMatchObject({ record: { status: 'DOWN' } });
    expect(store.puts.map((p) => p.modRevision)).toEqual(['5', '6', '7']);

    store.interleavedWrites = 3;
    await expect(registrar.updateInstance('orders', 'o1', { status: 'UP' })).rejects.toBeInstanceOf(UpdateConflictError);
  });

  it('answers not found for an unknown instance, or one whose lease ran out meanwhile', async () => {
    const { store, registrar } = setup();
    store.leaseGone = true;
    await expect(registrar.updateInstance('orders', 'o1', { status: 'DOWN' })).rejects.toBeInstanceOf(InstanceNotFoundError);
    store.current = undefined;
    await expect(registrar.updateInstance('orders', 'o1', { status: 'DOWN' })).rejects.toBeInstanceOf(InstanceNotFoundError);
  });
});

