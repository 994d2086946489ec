import { EtcdLeaseInvalidError, GRPCUnavailableError } from 'etcd3';
import { KeyLayout, OverloadedError, RegistryUnavailableError } from '@app/registry';
import { InstanceRegistrar } from './instance-registrar';
import { InlineRenewal } from './lease-engine/inline-renewal';
import { LeaseGranter } from './lease-grants/lease-granter';
import { BatchedPut } from './put-batcher';
import { RegistryStore, StoredInstance } from './registry-store';

const layout = new KeyLayout('/registry/');
const registration = { address: '10.0.0.1', port: 80, ttl: 30, metadata: {}, tags: [], weight: 100, status: 'UP' as const };

/** The RegistryStore calls register makes, over keys and leases held in memory; grants resolve when the test says. */
class FakeStore {
  readonly layout = layout;
  readonly kv = new Map<string, StoredInstance>();
  readonly liveLeases = new Set<string>();
  readonly revoked: string[] = [];
  readonly txns: BatchedPut[][] = [];
  private nextLease = 100;
  private revision = 1;
  /** Grants waiting for `releaseGrants()`, when `holdGrants` is set. */
  holdGrants = false;
  private readonly heldGrants: Array<() => void> = [];

  async grantLease(): Promise<string> {
    if (this.holdGrants) await new Promise<void>((r) => this.heldGrants.push(r));
    const id = String(this.nextLease++);
    this.liveLeases.add(id);
    return id;
  }

  releaseGrants(): void {
    for (const release of this.heldGrants.splice(0)) release();
  }

  get grantsWaiting(): number {
    return this.heldGrants.length;
  }

  /** As etcd: the lease goes, and every key on it. */
  async revokeLease(id: string): Promise<void> {
    this.revoked.push(id);
    this.liveLeases.delete(id);
    for (const [key, stored] of this.kv) if (stored.leaseId === id) this.kv.delete(key);
  }

  async putMany(items: readonly BatchedPut[]): Promise<Array<{ revision: string; previous?: StoredInstance }>> {
    this.txns.push([...items]);
    const bad = items.find((i) => !this.liveLeases.has(i.leaseId));
    if (bad) throw new EtcdLeaseInvalidError(bad.leaseId);
    this.revision++;
    return items.map((i) => this.apply(i));
  }

  async delete(key: string): Promise<StoredInstance | undefined> {
    const previous = this.kv.get(key);
    this.kv.delete(key);
    return previous;
  }

  private apply(item: BatchedPut): { revision: string; previous?: StoredInstance } {
    const previous = this.kv.get(item.key);
    this.kv.set(item.key, { key: item.key, value: item.value, leaseId: item.leaseId, modRevision: String(this.revision) });
    return { revision: String(this.revision), previous };
  }
}

function setup(options: { writeConcurrency?: number; writeQueueCapacity?: number; granter?: LeaseGranter } = {}) {
  const store = new FakeStore();
  const leases = new InlineRenewal({ send: () => 0, streamCount: 1 }).table;
  const registrar = new InstanceRegistrar(store as unknown as RegistryStore, leases, {
    writeConcurrency: options.writeConcurrency ?? 4,
    writeQueueCapacity: options.writeQueueCapacity ?? 100,
    regrantsPerSecond: 1,
    granter: options.granter,
  });
  return { store, leases, registrar };
}

const flushTurns = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('InstanceRegistrar.register (batched puts)', () => {
  it('holds a write slot only for the LeaseGrant: with one slot, grants queue, and a put in flight does not block the next grant', async () => {
    const { store, registrar } = setup({ writeConcurrency: 1 });
    store.holdGrants = true;
    const results = ['a', 'b', 'c'].map((id) => registrar.register('orders', id, registration));
    await flushTurns();
    // One slot: one grant in flight, the others queued for the slot.
    expect(store.grantsWaiting).toBe(1);
    expect(registrar.writeQueueDepth).toBe(2);
    store.holdGrants = false;
    store.releaseGrants();
    const done = await Promise.all(results);
    expect(done.map((r) => r.created)).toEqual([true, true, true]);
    expect(new Set(done.map((r) => r.leaseId)).size).toBe(3);
    expect(store.kv.size).toBe(3);

    // A put that never completes keeps its registration waiting, not the write slot.
    store.putMany = () => new Promise<never>(() => undefined);
    void registrar.register('orders', 'd', registration);
    await flushTurns();
    let granted = 0;
    const grant = store.grantLease.bind(store);
    store.grantLease = () => (granted++, grant());
    void registrar.register('orders', 'e', registration);
    await flushTurns();
    expect(granted).toBe(1);
  });

  it('sends the puts of registrations granted in the same turn as one Txn and answers created / replaced per item', async () => {
    const { store, registrar } = setup();
    await registrar.register('orders', 'a', registration);
    const before = store.txns.length;
    const [again, fresh] = await Promise.all([registrar.register('orders', 'a', { ...registration, ttl: 60 }), registrar.register('orders', 'b', registration)]);
    expect(store.txns.slice(before).map((txn) => txn.length)).toEqual([2]);
    expect(again.created).toBe(false);
    expect(fresh.created).toBe(true);
    // A new TTL took a new lease; the replaced one is NOT revoked (it may carry other instances).
    expect(store.kv.get(layout.instanceKey('orders', 'a'))?.leaseId).toBe(again.leaseId);
    expect(again.leaseId).not.toBe('100');
    expect(store.revoked).toEqual([]);
  });

  it('deregistering deletes exactly the instance key and revokes no lease (a lease may carry other instances)', async () => {
    const { store, registrar } = setup();
    // Two instances on one lease, as a replica of the shared-lease release writes them.
    store.liveLeases.add('700');
    await store.putMany([
      { key: layout.instanceKey('orders', 'a'), value: '{}', leaseId: '700' },
      { key: layout.instanceKey('orders', 'b'), value: '{}', leaseId: '700' },
    ]);
    await registrar.deregister('orders', 'a');
    expect([...store.kv.keys()]).toEqual([layout.instanceKey('orders', 'b')]);
    expect(store.revoked).toEqual([]);
  });

  it('re-grants when the reused lease is gone, without failing the registration batched with it', async () => {
    const { store, registrar } = setup();
    const first = await registrar.register('orders', 'a', registration);
    await registrar.register('orders', 'b', registration);
    store.liveLeases.delete(first.leaseId); // expired behind the gateway's back
    const [a, b] = await Promise.all([registrar.register('orders', 'a', registration), registrar.register('orders', 'b', registration)]);
    expect(a.leaseId).not.toBe(first.leaseId);
    expect(store.kv.get(layout.instanceKey('orders', 'a'))?.leaseId).toBe(a.leaseId);
    expect(b.created).toBe(false);
    expect(store.txns.length).toBeGreaterThanOrEqual(1);
  });

  it('answers 503 (OverloadedError) when the batched puts queue is full, and revokes the lease granted for nothing', async () => {
    const { store, registrar } = setup({ writeConcurrency: 1, writeQueueCapacity: 0 });
    // Occupy the only Txn slot with a put that never completes.
    const blocked = new Promise<never>(() => undefined);
    const realPutMany = store.putMany.bind(store);
    let calls = 0;
    store.putMany = (items) => (calls++ === 0 ? blocked : realPutMany(items));
    void registrar.register('orders', 'a', registration);
    await flushTurns();
    await expect(registrar.register('orders', 'b', registration)).rejects.toBeInstanceOf(OverloadedError);
    expect(store.revoked).toEqual(['101']);
  });

  it('takes leases from an injected granter (the grant worker), still one write slot per grant, its typed errors mapped as before', async () => {
    const asked: Array<{ ttl: number; release: (outcome: string | Error) => void }> = [];
    const granter: LeaseGranter = {
      grant: (ttl) => new Promise<string>((resolve, reject) => asked.push({ ttl, release: (o) => (typeof o === 'string' ? resolve(o) : reject(o)) })),
    };
    const { store, registrar } = setup({ writeConcurrency: 2, granter });
    store.liveLeases.add('900').add('901').add('902');
    const results = ['a', 'b', 'c'].map((id) => registrar.register('orders', id, registration));
    await flushTurns();
    expect(asked.map((a) => a.ttl)).toEqual([30, 30]); // WRITE_CONCURRENCY bounds grants in flight
    expect(registrar.writeQueueDepth).toBe(1);
    asked[0].release('900');
    asked[1].release(new GRPCUnavailableError('the lease-grant worker exited before etcd answered'));
    await flushTurns();
    asked[2].release('902');
    const [a, b, c] = await Promise.allSettled(results);
    expect(a).toMatchObject({ status: 'fulfilled', value: { leaseId: '900' } });
    expect(b.status === 'rejected' && b.reason).toBeInstanceOf(RegistryUnavailableError);
    expect(c).toMatchObject({ status: 'fulfilled', value: { leaseId: '902' } });
    expect(store.kv.get(layout.instanceKey('orders', 'a'))?.leaseId).toBe('900');
  });
});
