import { encodeRecord, InstanceRecord, KeyLayout } from '@app/registry';
import { InstanceDirectory } from './instance-directory';
import type { RegistryEvent } from './registry-watch';

const layout = new KeyLayout('/registry/');
const record: InstanceRecord = { service: 'a', id: '1', address: '10.0.0.1', port: 80, ttl: 6, metadata: {}, tags: [], weight: 100, status: 'UP', registeredAt: '' };
const put = (revision: number, leaseId = '7'): RegistryEvent => ({ type: 'put', service: 'a', id: '1', value: encodeRecord(record), leaseId, revision, created: true });
const del = (revision: number): RegistryEvent => ({ type: 'delete', service: 'a', id: '1', revision, created: false });
const key = layout.instanceKey('a', '1');

describe('InstanceDirectory', () => {
  it('indexes instances by service for lookups: the read, the watch and its own writes, and forgets a deleted one', () => {
    const dir = new InstanceDirectory(layout);
    const item = (service: string, id: string) => ({ key: layout.instanceKey(service, id), value: `${service}/${id}`, leaseId: '3', modRevision: '4' });
    dir.replace({ revision: '5', items: [item('a', '1'), item('a', '2'), item('b', '1'), { key: '/registry/other/x', value: 'v', leaseId: '0', modRevision: '1' }] });
    expect([...dir.instancesOf('a')].sort()).toEqual([['1', 'a/1'], ['2', 'a/2']]);
    expect(dir.serviceCounts().sort((x, y) => x.service.localeCompare(y.service))).toEqual([{ service: 'a', instances: 2 }, { service: 'b', instances: 1 }]);
    dir.apply([{ type: 'delete', service: 'b', id: '1', revision: 6, created: false }]);
    expect([dir.instanceCount('b'), [...dir.instancesOf('b')]]).toEqual([0, []]);
    expect(dir.serviceCounts()).toEqual([{ service: 'a', instances: 2 }]);
    // The registrar's own write is held (for renewals) but not looked up until the watch delivers it.
    dir.written(layout.instanceKey('c', '9'), 'c/9', '8', 1_000);
    expect([dir.instanceCount('c'), dir.latest(layout.instanceKey('c', '9'))]).toEqual([0, 'c/9']);
    dir.apply([{ type: 'put', service: 'c', id: '9', value: 'c/9', leaseId: '8', revision: 7, created: true }]);
    expect([...dir.instancesOf('c')]).toEqual([['9', 'c/9']]);
    dir.apply([{ type: 'put', service: 'c', id: '9', value: 'c/9', leaseId: '8', revision: 8, created: false }]);
    expect(dir.instanceCount('c')).toBe(1);
    dir.replace({ revision: '9', items: [item('b', '2')] });
    expect([dir.instanceCount('a'), dir.instanceCount('c'), dir.instanceCount('b')]).toEqual([0, 0, 1]);
    dir.written(layout.instanceKey('b', '3'), 'b/3', '8', 2_000);
    dir.apply([{ type: 'delete', service: 'b', id: '3', revision: 10, created: false }]);
    expect([...dir.instancesOf('b')]).toEqual([['2', 'b/2']]);
  });

  it('knows every instance and its lease from the initial read and the watch, with when a lease was seen granted', () => {
    const dir = new InstanceDirectory(layout);
    expect(dir.isSynced).toBe(false);
    dir.replace({ revision: '5', items: [{ key, value: encodeRecord(record), leaseId: '3', modRevision: '4' }] });
    expect(dir.get(key)).toMatchObject({ leaseId: '3', observedAt: 0 });
    dir.apply([put(6, '9')], 1_000);
    expect(dir.get(key)).toMatchObject({ leaseId: '9', observedAt: 1_000 });
    dir.apply([put(7, '9')], 2_000); // same lease (a PATCH): the grant was seen earlier
    expect(dir.get(key)?.observedAt).toBe(1_000);
    dir.apply([del(8)], 3_000);
    expect(dir.get(key)).toBeUndefined();
  });

  it('remembers what a key held only for deletions right after an etcd outage, and only within its TTL', () => {
    const dir = new InstanceDirectory(layout);
    dir.apply([put(1)], 0);
    dir.apply([del(2)], 1_000);
    expect(dir.recentlyDeleted(key, 1_500)).toBeUndefined(); // a pod that went silent: 404, as always
    dir.apply([put(3)], 2_000);
    dir.outageEndedAt(2_500);
    dir.apply([del(4)], 3_000);
    expect(dir.recentlyDeleted(key, 3_500)?.value).toBe(encodeRecord(record));
    expect(dir.recentlyDeleted(key, 3_000 + 6_001)).toBeUndefined();
    dir.apply([put(5)], 4_000);
    expect(dir.recentlyDeleted(key, 4_000)).toBeUndefined();
  });

  it('holds the values of the instances this replica renews: its own writes at once, and after etcd deleted them', () => {
    const tracked = new Set<string>();
    const dir = new InstanceDirectory(layout, { retain: (k) => tracked.has(k) });
    const registered = encodeRecord(record);
    const patched = encodeRecord({ ...record, status: 'DRAINING' });
    expect(dir.written(key, registered, '7', 0)).toBe(key);
    tracked.add(key);
    expect(dir.latest(key)).toBe(registered);
    expect(dir.get(key)).toMatchObject({ leaseId: '7', observedAt: 0 });
    dir.apply([{ ...put(2), value: patched }], 1_000); // a PATCH through another replica
    expect(dir.latest(key)).toBe(patched);
    expect(dir.get(key)?.observedAt).toBe(0); // same lease
    dir.apply([del(3)], 2_000); // the lease expired
    expect(dir.get(key)).toBeUndefined();
    expect(dir.latest(key)).toBe(patched);
    // Not an outage: a heartbeat on another replica still gets 404 (recentlyDeleted), only the
    // renewing replica re-grants, and for as long as it renews the instance.
    expect(dir.recentlyDeleted(key, 2_500)).toBeUndefined();
    dir.apply([], 2_000 + 301_000);
    expect(dir.latest(key)).toBe(patched);
    tracked.delete(key);
    dir.apply([], 2_000 + 602_000);
    expect(dir.latest(key)).toBeUndefined();
  });

  it('forgets the values of deleted instances nobody here renews', () => {
    const dir = new InstanceDirectory(layout, { retain: () => false });
    dir.apply([put(1)], 0);
    dir.apply([del(2)], 1_000);
    expect(dir.latest(key)).toBeUndefined();
  });

  it('keeps the values of renewed instances a rebuild no longer finds', () => {
    const other = layout.instanceKey('a', '2');
    const dir = new InstanceDirectory(layout, { retain: (k) => k === key });
    dir.replace({ revision: '5', items: [{ key, value: 'v1', leaseId: '3', modRevision: '4' }, { key: other, value: 'v2', leaseId: '3', modRevision: '4' }] });
    dir.replace({ revision: '9', items: [] });
    expect(dir.size).toBe(0);
    expect(dir.latest(key)).toBe('v1');
    expect(dir.latest(other)).toBeUndefined();
  });

  it('reuses the rows of deleted instances and grows past its first arrays', () => {
    const dir = new InstanceDirectory(layout);
    const keyOf = (i: number) => layout.instanceKey('a', `i${i}`);
    for (let i = 0; i < 3_000; i++) dir.written(keyOf(i), `v${i}`, String(1_000 + i), i);
    dir.apply([{ type: 'delete', service: 'a', id: 'i5', revision: 2, created: false }], 10);
    dir.written(keyOf(5), 'again', '99', 20);
    expect(dir.size).toBe(3_000);
    expect(dir.get(keyOf(2_999))).toMatchObject({ value: 'v2999', leaseId: '3999', observedAt: 2_999 });
    expect(dir.get(keyOf(5))).toMatchObject({ value: 'again', leaseId: '99', observedAt: 20 });
  });
});
