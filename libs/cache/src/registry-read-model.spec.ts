import { InstanceDirectory, RegistryEvent } from '@app/etcd';
import { KeyLayout, RegistryUnavailableError } from '@app/registry';
import { RegistryReadModel } from './registry-read-model';

const layout = new KeyLayout('/registry/');
const value = (service: string, id: string, port = 8080, status = 'UP') => JSON.stringify({ service, id, address: '10.0.0.1', port, ttl: 30, metadata: {}, tags: [], weight: 100, status });
const put = (service: string, id: string, revision: number, port = 8080, created = true): RegistryEvent => ({ type: 'put', service, id, value: value(service, id, port), leaseId: '7', revision, created });
const del = (service: string, id: string, revision: number): RegistryEvent => ({ type: 'delete', service, id, revision, created: false });

function setup(items: Array<[string, string]> = [], revision = 10) {
  const directory = new InstanceDirectory(layout);
  const watch = { confirmedAt: 0 };
  let now = 1_000;
  const reads = new RegistryReadModel(directory, watch, { staleAfterMs: 3_000, now: () => now });
  const sync = () => {
    directory.replace({ revision: String(revision), items: items.map(([service, id]) => ({ key: layout.instanceKey(service, id), value: value(service, id), leaseId: '7', modRevision: '1' })) });
    reads.resynced(revision);
  };
  // RegistryRuntime.fanOut, in its order.
  const apply = (...events: RegistryEvent[]) => {
    directory.apply(events);
    reads.applyEvents(events);
  };
  return { directory, watch, reads, sync, apply, advance: (ms: number) => (now += ms), confirm: () => (watch.confirmedAt = now) };
}

describe('RegistryReadModel', () => {
  it('answers 503 starting (with Retry-After) before the initial read, never an empty list', () => {
    const { reads } = setup();
    expect(() => reads.resolve('orders')).toThrow(RegistryUnavailableError);
    expect(() => reads.resolve('orders')).toThrow(/starting/);
    expect(() => reads.listServices()).toThrow(/starting/);
  });

  it('answers every service from the initial read, in id order, at the read revision', () => {
    const { reads, sync, confirm } = setup([['orders', 'b'], ['orders', 'a'], ['users', 'x']], 42);
    sync();
    confirm();
    const view = reads.resolve('orders');
    expect(view.instances.map((i) => i.id)).toEqual(['a', 'b']);
    expect([view.revision, view.index, view.stale]).toEqual([42, 42, false]);
    expect(reads.listServices().services).toEqual([{ service: 'orders', instances: 2 }, { service: 'users', instances: 1 }]);
    expect(reads.resolve('unknown')).toMatchObject({ instances: [], index: 42 });
  });

  it('patches a looked-up view by events: a delete removes only the instance it names', () => {
    const { reads, sync, apply } = setup([['orders', 'a'], ['orders', 'b']]);
    sync();
    const before = reads.resolve('orders').instances;
    apply(put('orders', 'c', 11), del('orders', 'a', 12));
    const after = reads.resolve('orders');
    expect(after.instances.map((i) => i.id)).toEqual(['b', 'c']);
    expect(after.index).toBe(12);
    // Copy-on-write: what an earlier caller holds did not change under it.
    expect(before.map((i) => i.id)).toEqual(['a', 'b']);
  });

  it('returns the same frozen array while the service does not change (the encoded-answer cache keys on it)', () => {
    const { reads, sync, apply } = setup([['orders', 'a'], ['users', 'x']]);
    sync();
    const first = reads.resolve('orders').instances;
    apply(put('users', 'y', 11));
    expect(reads.resolve('orders').instances).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('does not move the index, nor wake a blocking query, on an identical re-put', async () => {
    const { reads, sync, apply } = setup([['orders', 'a']]);
    sync();
    const { index } = reads.resolve('orders');
    const woken = reads.waitForServiceChange('orders', 50);
    apply(put('orders', 'a', 11, 8080, false));
    expect(await woken).toBe('timeout');
    expect(reads.resolve('orders').index).toBe(index);
    const changed = reads.waitForServiceChange('orders', 1_000);
    apply(put('orders', 'a', 12, 9090, false));
    expect(await changed).toBe('changed');
    expect(reads.resolve('orders')).toMatchObject({ index: 12, instances: [expect.objectContaining({ port: 9090 })] });
  });

  it('counts a write that stores the same record with its fields in another order (a PATCH to the status it has) as no change', () => {
    const { reads, sync, apply } = setup([['orders', 'a']]);
    sync();
    const { index, instances } = reads.resolve('orders');
    const reordered = JSON.stringify({ status: 'UP', weight: 100, tags: [], metadata: {}, ttl: 30, port: 8080, address: '10.0.0.1', id: 'a', service: 'orders' });
    apply({ type: 'put', service: 'orders', id: 'a', value: reordered, leaseId: '7', revision: 11, created: false });
    expect(reads.resolve('orders').index).toBe(index);
    expect(reads.resolve('orders').instances).toBe(instances);
  });

  it('wakes the list waiters when a service appears or its count moves, not on an update', async () => {
    const { reads, sync, apply } = setup([['orders', 'a']]);
    sync();
    const listIndex = reads.listServices().index;
    const update = reads.waitForListChange(50);
    apply(put('orders', 'a', 11, 9090, false));
    expect(await update).toBe('timeout');
    const created = reads.waitForListChange(1_000);
    apply(put('billing', 'z', 12));
    expect(await created).toBe('changed');
    expect(reads.listServices()).toMatchObject({ index: 12, services: [{ service: 'billing', instances: 1 }, { service: 'orders', instances: 1 }] });
    expect(listIndex).toBeLessThan(12);
  });

  it("never moves a service's index back, also when the service empties and comes back", () => {
    const { reads, sync, apply } = setup([['orders', 'a']], 10);
    sync();
    apply(put('orders', 'b', 20));
    expect(reads.resolve('orders').index).toBe(20);
    apply(del('orders', 'a', 21), del('orders', 'b', 22));
    expect(reads.resolve('orders')).toMatchObject({ index: 22, instances: [] });
    apply(put('users', 'x', 23));
    expect(reads.resolve('orders').index).toBeGreaterThanOrEqual(22);
    apply(put('orders', 'c', 24));
    expect(reads.resolve('orders').index).toBe(24);
  });

  it('counts a change to a service nobody looked up, and builds its view from the directory on the first lookup', () => {
    const { reads, sync, apply } = setup([['orders', 'a']], 10);
    sync();
    apply(put('orders', 'b', 11));
    expect(reads.viewsInMemory).toBe(0);
    expect(reads.resolve('orders')).toMatchObject({ index: 11, instances: [{ id: 'a' }, { id: 'b' }] });
    expect(reads.viewsInMemory).toBe(1);
  });

  it('skips values that are not instance records, as when read', () => {
    const { reads, sync, apply } = setup([['orders', 'a']]);
    sync();
    reads.resolve('orders');
    apply({ type: 'put', service: 'orders', id: 'a', value: 'not json', leaseId: '7', revision: 11, created: false });
    expect(reads.resolve('orders').instances).toEqual([]);
  });

  it('marks answers stale while the watch has not confirmed them, and answers them all the same', () => {
    const { reads, sync, advance, confirm } = setup([['orders', 'a']]);
    sync();
    confirm();
    expect(reads.resolve('orders').stale).toBe(false);
    advance(3_001);
    expect(reads.resolve('orders')).toMatchObject({ stale: true, instances: [{ id: 'a' }] });
    expect(reads.listServices().stale).toBe(true);
  });

  it('rebuilds every view after a resync, wakes every blocking query, and keeps indexes moving forward', async () => {
    const { directory, reads, sync, apply } = setup([['orders', 'a']], 10);
    sync();
    apply(put('orders', 'b', 15));
    reads.resolve('orders');
    const woken = reads.waitForServiceChange('orders', 1_000);
    const listWoken = reads.waitForListChange(1_000);
    directory.replace({ revision: '30', items: [{ key: layout.instanceKey('orders', 'c'), value: value('orders', 'c'), leaseId: '7', modRevision: '1' }] });
    reads.resynced(30);
    expect([await woken, await listWoken]).toEqual(['changed', 'changed']);
    expect(reads.resolve('orders')).toMatchObject({ index: 30, instances: [{ id: 'c' }] });
    expect(reads.listServices().index).toBe(30);
  });
});
