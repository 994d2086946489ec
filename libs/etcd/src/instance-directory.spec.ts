import { encodeRecord, InstanceRecord, KeyLayout } from '@app/registry';
import { InstanceDirectory } from './instance-directory';
import type { RegistryEvent } from './registry-watch';

const layout = new KeyLayout('/registry/');
const record: InstanceRecord = { service: 'a', id: '1', address: '10.0.0.1', port: 80, ttl: 6, metadata: {}, tags: [], weight: 100, status: 'UP', registeredAt: '' };
const put = (revision: number, leaseId = '7'): RegistryEvent => ({ type: 'put', service: 'a', id: '1', value: encodeRecord(record), leaseId, revision, created: true });
const del = (revision: number): RegistryEvent => ({ type: 'delete', service: 'a', id: '1', revision, created: false });
const key = layout.instanceKey('a', '1');

describe('InstanceDirectory', () => {
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
});
