import { decodeRecord, encodeRecord, InstanceRecord, KeyLayout } from '@app/registry';
import { InstanceDirectory } from './instance-directory';
import { InstanceRegistrar } from './instance-registrar';
import { InlineRenewal } from './lease-engine/inline-renewal';
import { RegistryStore } from './registry-store';
import type { RegistryEvent } from './registry-watch';

const layout = new KeyLayout('/registry/');
const key = layout.instanceKey('orders', 'o1');
const record: InstanceRecord = { service: 'orders', id: 'o1', address: '10.0.0.1', port: 80, ttl: 9, metadata: {}, tags: [], weight: 100, status: 'UP', registeredAt: '' };

/** The etcd calls a re-grant makes; the key is gone from etcd (its lease expired). */
class FakeStore {
  readonly layout = layout;
  readonly written: string[] = [];
  async grantLease(): Promise<string> {
    return '500';
  }
  async putIfAbsent(_key: string, value: string): Promise<{ written: boolean }> {
    this.written.push(value);
    return { written: true };
  }
  async revokeLease(): Promise<void> {}
}

/** Wired as RegistryRuntime wires them: directory (values, fed by the watch), lease table, registrar. */
function setup() {
  const store = new FakeStore();
  const wired: { registrar?: InstanceRegistrar; engine?: InlineRenewal } = {};
  const directory = new InstanceDirectory(layout, { retain: (k) => wired.engine!.table.has(k) });
  const engine = (wired.engine = new InlineRenewal({ send: () => 0, streamCount: 1 }, { leaseLost: (lease) => wired.registrar!.regrant(lease), values: directory }));
  const errors: string[] = [];
  const registrar = (wired.registrar = new InstanceRegistrar(store as unknown as RegistryStore, engine.table, { writeConcurrency: 1, writeQueueCapacity: 10, regrantsPerSecond: 100 }, { error: (message, err) => errors.push(`${message}: ${(err as Error).message}`) }));
  return { store, engine, directory, registrar, errors };
}

const put = (value: string, revision: number, leaseId = '101'): RegistryEvent => ({ type: 'put', service: 'orders', id: 'o1', value, leaseId, revision, created: revision === 1 });
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('InstanceRegistrar.regrant', () => {
  it('writes the latest value the watch delivered (a PATCH through another replica), after etcd deleted the key', async () => {
    const { store, engine, directory } = setup();
    const registered = encodeRecord(record);
    engine.table.track(key, '101', record.ttl, registered, 0);
    directory.apply([put(registered, 1)], 0);
    const patched = encodeRecord({ ...record, status: 'DRAINING' });
    directory.apply([put(patched, 2)], 1_000);
    // The renewal finds the lease gone; etcd deletes the key with it, the watch says so.
    engine.table.heartbeat(key, 3_000);
    engine.renewDueLeases(3_000);
    engine.onAnswer('101', 0, 3_010);
    directory.apply([{ type: 'delete', service: 'orders', id: 'o1', revision: 3, created: false }], 3_020);
    expect(engine.table.heartbeat(key, 3_100)).toBe('lease-lost');
    await flush();
    expect(store.written.map((v) => decodeRecord(v)?.status)).toEqual(['DRAINING']);
    expect(engine.table.get(key)?.leaseId).toBe('500');
  });

  it('writes a PATCH made through this replica even before the watch delivered it', async () => {
    const { store, engine, directory } = setup();
    engine.table.track(key, '101', record.ttl, encodeRecord(record), 0);
    engine.table.written(key, encodeRecord({ ...record, status: 'DOWN' }), '101', 1_000);
    engine.table.heartbeat(key, 3_000);
    engine.renewDueLeases(3_000);
    engine.onAnswer('101', 0, 3_010);
    expect(directory.size).toBe(1);
    engine.table.heartbeat(key, 3_100);
    await flush();
    expect(store.written.map((v) => decodeRecord(v)?.status)).toEqual(['DOWN']);
  });
});

describe('InstanceRegistrar.regrant without a known value', () => {
  it('reports the failure and writes nothing (no grant either)', async () => {
    const store = new FakeStore();
    const errors: string[] = [];
    const wired: { registrar?: InstanceRegistrar } = {};
    const engine = new InlineRenewal({ send: () => 0, streamCount: 1 }, { leaseLost: (lease) => wired.registrar!.regrant(lease) });
    const grants = jest.spyOn(store, 'grantLease');
    wired.registrar = new InstanceRegistrar(store as unknown as RegistryStore, engine.table, { writeConcurrency: 1, writeQueueCapacity: 10, regrantsPerSecond: 100 }, { error: (message, err) => errors.push(`${message}: ${(err as Error).message}`) });
    engine.table.track(key, '101', record.ttl, encodeRecord(record), 0);
    engine.table.heartbeat(key, 3_000);
    engine.renewDueLeases(3_000);
    engine.onAnswer('101', 0, 3_010);
    expect(engine.table.heartbeat(key, 3_100)).toBe('lease-lost');
    await flush();
    expect(store.written).toEqual([]);
    expect(grants).not.toHaveBeenCalled();
    expect(errors).toEqual([`re-grant of ${key} failed: its value is not known on this replica`]);
  });
});
