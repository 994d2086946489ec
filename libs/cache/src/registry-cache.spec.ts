import type { RegistryEvent, StoredRange } from '@app/etcd';
import { encodeRecord, InstanceRecord, InstanceStatus, KeyLayout, RegistryUnavailableError } from '@app/registry';
import { MemorySharedStore } from './memory-shared-store';
import { CacheResult, CacheTier, RegistryCache, RegistryCacheOptions, RegistrySource, WatchState } from './registry-cache';

const layout = new KeyLayout('/registry/');

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** etcd as the cache sees it: a revisioned key space, with read counts and a switch to fail or hang. */
class FakeEtcd implements RegistrySource {
  readonly layout = layout;
  revision = 100;
  reads = 0;
  scans = 0;
  /** While set, reads wait for it (a slow or frozen etcd); a rejection is a failed read. */
  gate: Promise<void> | undefined;
  private readonly kv = new Map<string, string>();

  async listService(service: string): Promise<StoredRange> {
    this.reads++;
    const revision = this.revision;
    await this.gate;
    const prefix = layout.servicePrefix(service);
    return { revision: String(revision), items: this.items().filter((i) => i.key.startsWith(prefix)) };
  }

  async scanAll(): Promise<StoredRange> {
    this.scans++;
    await this.gate;
    return { revision: String(this.revision), items: this.items() };
  }

  /** Writes an instance and returns the watch event etcd would send. */
  put(service: string, id: string, status: InstanceStatus = 'UP', extra: Partial<InstanceRecord> = {}): RegistryEvent {
    const key = layout.instanceKey(service, id);
    const created = !this.kv.has(key);
    const value = encodeRecord({ service, id, address: '10.0.0.1', port: 8080, ttl: 30, metadata: {}, tags: [], weight: 100, status, registeredAt: '', ...extra });
    this.kv.set(key, value);
    return { type: 'put', service, id, value, revision: ++this.revision, created };
  }

  delete(service: string, id: string): RegistryEvent {
    this.kv.delete(layout.instanceKey(service, id));
    return { type: 'delete', service, id, revision: ++this.revision, created: false };
  }

  private items() {
    return [...this.kv].map(([key, value]) => ({ key, value, leaseId: '1', modRevision: '1' }));
  }
}

interface Replica {
  cache: RegistryCache;
  watch: { epoch: number; confirmedAt: number };
  metrics: Record<string, number>;
}

function setup(options: Partial<RegistryCacheOptions> = {}) {
  const clock = { now: 1_000_000 };
  const etcd = new FakeEtcd();
  const shared = new MemorySharedStore(() => clock.now);
  const replica = (): Replica => {
    const watch: WatchState & { epoch: number; confirmedAt: number } = { epoch: 1, confirmedAt: clock.now };
    const metrics: Record<string, number> = {};
    const cache = new RegistryCache(
      etcd,
      shared,
      watch,
      {
        ttlMs: 30_000,
        staleAfterMs: 3_000,
        negativeTtlMs: 5_000,
        sharedTtlMs: 600_000,
        lockTtlMs: 2_000,
        lockPollMs: 10,
        backoffMinMs: 1_000,
        backoffMaxMs: 8_000,
        now: () => clock.now,
        // Polling yields to the event loop instead of sleeping: the lock holder's read can complete.
        sleep: () => new Promise((resolve) => setImmediate(resolve)),
        random: () => 0,
        ...options,
      },
      { cacheRequest: (tier: CacheTier, result: CacheResult) => (metrics[`${tier}:${result}`] = (metrics[`${tier}:${result}`] ?? 0) + 1) },
    );
    return { cache, watch, metrics };
  };
  /** Moves time on; the replicas' watches keep confirming unless marked down. */
  const advance = (ms: number, ...down: Replica[]) => {
    clock.now += ms;
    for (const r of replicas) if (!down.includes(r)) r.watch.confirmedAt = clock.now;
  };
  const replicas: Replica[] = [];
  const add = () => {
    const r = replica();
    replicas.push(r);
    return r;
  };
  return { clock, etcd, shared, add, advance };
}

const ids = (view: { instances: readonly { id: string }[] }) => view.instances.map((i) => i.id);
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('RegistryCache', () => {
  describe('loading', () => {
    it('shares one etcd read among concurrent cold lookups of a service', async () => {
      const { etcd, shared, add } = setup();
      etcd.put('a', '1');
      etcd.put('b', '1');
      const { cache, metrics } = add();
      const views = await Promise.all([...Array.from({ length: 100 }, () => cache.resolve('a')), ...Array.from({ length: 100 }, () => cache.resolve('b'))]);
      expect(etcd.reads).toBe(2);
      expect(views.every((v) => v.instances.length === 1 && !v.stale)).toBe(true);
      expect(metrics).toEqual({ 'l1:miss': 200, 'l2:miss': 2 });
      expect(Object.keys(shared.locks)).toEqual([]);

      await cache.resolve('a');
      expect(metrics['l1:hit']).toBe(1);
      expect(etcd.reads).toBe(2);
    });

    it('lets a second replica answer from L2 without reading etcd', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      await add().cache.resolve('a');
      const other = add();
      expect(ids(await other.cache.resolve('a'))).toEqual(['1']);
      expect(etcd.reads).toBe(1);
      expect(other.metrics).toEqual({ 'l1:miss': 1, 'l2:hit': 1 });
    });

    it('has replicas refreshing one service at the same moment read etcd once: the lock holder reads, the other takes its result', async () => {
      const { etcd, shared, add } = setup();
      etcd.put('a', '1');
      const gate = deferred();
      etcd.gate = gate.promise;
      const [first, second] = [add(), add()];
      const lookups = [first.cache.resolve('a'), second.cache.resolve('a')];
      await settle();
      await settle();
      expect(etcd.reads).toBe(1);
      gate.resolve();
      const [a, b] = await Promise.all(lookups);
      expect(ids(a)).toEqual(['1']);
      expect(ids(b)).toEqual(['1']);
      expect(etcd.reads).toBe(1);
      expect(shared.calls.poll).toBeGreaterThan(0);
      expect(shared.locks.size).toBe(0);
    });

    it('propagates a failed etcd read to every waiter, releases the lock and leaves no waiter behind', async () => {
      const { etcd, shared, add, advance } = setup();
      etcd.put('a', '1');
      etcd.gate = Promise.reject(new Error('etcd down'));
      etcd.gate.catch(() => undefined);
      const { cache } = add();
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => cache.resolve('a')));
      expect(results.every((r) => r.status === 'rejected' && r.reason instanceof RegistryUnavailableError)).toBe(true);
      expect(etcd.reads).toBe(1);
      expect(shared.locks.size).toBe(0);
      expect((cache as unknown as { serviceFlights: { size: number } }).serviceFlights.size).toBe(0);

      // Within the backoff window a cold lookup fails at once, without another read.
      await expect(cache.resolve('a')).rejects.toBeInstanceOf(RegistryUnavailableError);
      expect(etcd.reads).toBe(1);

      etcd.gate = undefined;
      advance(1_000);
      expect(ids(await cache.resolve('a'))).toEqual(['1']);
      expect(etcd.reads).toBe(2);
    });

    it('keeps serving from L1 and etcd while L2 is unreachable', async () => {
      const { etcd, shared, add } = setup();
      etcd.put('a', '1');
      shared.up = false;
      const { cache, metrics } = add();
      const views = await Promise.all(Array.from({ length: 10 }, () => cache.resolve('a')));
      expect(views.every((v) => ids(v).join() === '1')).toBe(true);
      expect(await cache.resolve('a')).toMatchObject({ stale: false });
      expect(etcd.reads).toBe(1);
      expect(metrics).toEqual({ 'l1:miss': 10, 'l2:miss': 1, 'l1:hit': 1 });
      expect(cache.health().sharedUp).toBe(false);
    });
  });

  describe('watch events', () => {
    it('applies puts and deletes in revision order and never empties another service', async () => {
      const { etcd, shared, add } = setup();
      etcd.put('a', '1');
      etcd.put('a', '2');
      etcd.put('b', '1');
      const { cache } = add();
      await cache.resolve('a');
      await cache.resolve('b');

      const gone = etcd.delete('a', '1');
      cache.applyEvents([gone]);
      expect(ids(await cache.resolve('a'))).toEqual(['2']);
      expect(ids(await cache.resolve('b'))).toEqual(['1']);

      // A replayed older event (e.g. after a resumed watch) changes nothing.
      cache.applyEvents([{ ...gone, type: 'put', value: etcd.put('x', 'y').value, revision: gone.revision - 1 }]);
      expect(ids(await cache.resolve('a'))).toEqual(['2']);

      cache.applyEvents([etcd.delete('a', '2')]);
      const empty = await cache.resolve('a');
      expect(empty.instances).toEqual([]);
      expect(empty.revision).toBe(etcd.revision);
      expect(ids(await cache.resolve('b'))).toEqual(['1']);
      expect(etcd.reads).toBe(2);

      // L2 followed the same events: a new replica sees the result without reading etcd.
      expect(Object.keys(shared.docs.get('svc:a')!.fields)).toEqual([]);
      expect(ids(await add().cache.resolve('b'))).toEqual(['1']);
      expect(etcd.reads).toBe(2);
    });

    it('applies events that arrive while a service loads on top of the loaded revision', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      const gate = deferred();
      etcd.gate = gate.promise;
      const { cache } = add();
      const lookup = cache.resolve('a');
      await settle();
      // The read was answered at the revision before this change; its event arrives before the answer.
      cache.applyEvents([etcd.put('a', '2', 'DRAINING')]);
      gate.resolve();
      const view = await lookup;
      expect(view.instances.map((i) => [i.id, i.status])).toEqual([
        ['1', 'UP'],
        ['2', 'DRAINING'],
      ]);
      expect(view.revision).toBe(etcd.revision);
    });

    it('replaces cached documents from the rebuild read after a compaction', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      const replica = add();
      await replica.cache.resolve('a');
      etcd.put('a', '2'); // missed by the compacted watch
      replica.watch.epoch = 2;
      replica.cache.resync(await etcd.scanAll());
      const view = await replica.cache.resolve('a');
      expect(ids(view)).toEqual(['1', '2']);
      expect(etcd.reads).toBe(1);
    });

    it('re-reads documents loaded under an older watch epoch (changes may have been missed)', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      const replica = add();
      await replica.cache.resolve('a');
      replica.watch.epoch = 2;
      await replica.cache.resolve('a');
      await settle();
      expect(etcd.reads).toBe(2);
    });
  });

  describe('stale-if-error', () => {
    it('answers from memory, marked stale, without waiting on etcd, and tries etcd at most once per backoff window', async () => {
      const { etcd, add, advance } = setup();
      etcd.put('a', '1');
      const replica = add();
      const { cache, metrics } = replica;
      await cache.resolve('a');

      // etcd freezes: the watch stops confirming and reads hang.
      const frozen = deferred();
      etcd.gate = frozen.promise;
      advance(3_001, replica);
      for (let i = 0; i < 50; i++) {
        const view = await cache.resolve('a'); // would never settle if it waited on the hanging read
        expect(view).toMatchObject({ stale: true });
        expect(ids(view)).toEqual(['1']);
      }
      expect(metrics['l1:stale']).toBe(50);
      expect(etcd.reads).toBe(2); // the cold load, then one refresh attempt

      frozen.reject(new Error('deadline exceeded'));
      await settle();
      advance(999, replica);
      await cache.resolve('a');
      expect(etcd.reads).toBe(2);
      advance(1, replica);
      await cache.resolve('a');
      await settle();
      expect(etcd.reads).toBe(3); // the next window: one more attempt

      // etcd back: the watch confirms again, answers are fresh without waiting for a read.
      etcd.gate = undefined;
      advance(10);
      expect(await cache.resolve('a')).toMatchObject({ stale: false });
    });

    it('answers a cold replica from an old L2 copy, stale, when etcd is unreachable', async () => {
      const { etcd, add, advance } = setup();
      etcd.put('a', '1');
      await add().cache.resolve('a');
      advance(60_000);
      etcd.gate = Promise.reject(new Error('etcd down'));
      etcd.gate.catch(() => undefined);
      const cold = add();
      cold.watch.confirmedAt = 0;
      const view = await cold.cache.resolve('a');
      expect(view).toMatchObject({ stale: true });
      expect(ids(view)).toEqual(['1']);
      expect(cold.metrics).toEqual({ 'l1:miss': 1, 'l2:stale': 1 });
    });

    it('re-reads after the TTL in the background while answering from memory', async () => {
      const { etcd, add, advance } = setup();
      etcd.put('a', '1');
      const { cache } = add();
      await cache.resolve('a');
      advance(30_000);
      const gate = deferred();
      etcd.gate = gate.promise;
      expect(await cache.resolve('a')).toMatchObject({ stale: false });
      for (let i = 0; i < 10 && etcd.reads < 2; i++) await settle(); // L2 and the lock come first
      expect(etcd.reads).toBe(2);
      gate.resolve();
    });
  });

  describe('negative caching', () => {
    it('reads an unknown service at most once per negative TTL', async () => {
      const { etcd, add, advance } = setup();
      const { cache } = add();
      for (let i = 0; i < 50; i++) expect(await cache.resolve('nope')).toMatchObject({ instances: [], stale: false });
      expect(etcd.reads).toBe(1);
      advance(4_999);
      await cache.resolve('nope');
      expect(etcd.reads).toBe(1);
      advance(1);
      await cache.resolve('nope');
      expect(etcd.reads).toBe(2);
    });

    it('shows a service registered within the negative TTL, through the watch', async () => {
      const { etcd, add } = setup();
      const { cache } = add();
      await cache.resolve('late');
      cache.applyEvents([etcd.put('late', '1')]);
      expect(ids(await cache.resolve('late'))).toEqual(['1']);
      expect(etcd.reads).toBe(1);
    });

    it('forgets expired negative entries when swept', async () => {
      const { clock, add } = setup();
      const { cache } = add();
      await cache.resolve('nope');
      cache.sweep(clock.now + 5_000);
      expect(cache.health().warmServices).toBe(0);
    });
  });

  describe('services list', () => {
    it('counts instances per service from one keys-only read and follows creates and deletes', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      etcd.put('a', '2');
      etcd.put('b', '1');
      const { cache } = add();
      expect((await cache.listServices()).services).toEqual([
        { service: 'a', instances: 2 },
        { service: 'b', instances: 1 },
      ]);
      cache.applyEvents([etcd.put('c', '1'), etcd.put('a', '1', 'DOWN'), etcd.delete('b', '1')]);
      expect((await cache.listServices()).services).toEqual([
        { service: 'a', instances: 2 },
        { service: 'c', instances: 1 },
      ]);
      expect(etcd.scans).toBe(1);
    });
  });

  describe('change notification (blocking queries)', () => {
    const outcome = (promise: Promise<string>) => {
      const state: { value?: string } = {};
      void promise.then((value) => (state.value = value));
      return state;
    };

    it('moves the index and wakes waiters on a change through the watch, and only then', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      const { cache } = add();
      const first = await cache.resolve('a');
      expect(first.index).toBe(first.revision);

      const waiting = outcome(cache.waitForServiceChange('a', 60_000));
      const other = outcome(cache.waitForServiceChange('b', 60_000));
      cache.applyEvents([etcd.put('b', '1')]);
      await settle();
      expect(waiting.value).toBeUndefined();

      const event = etcd.put('a', '2');
      cache.applyEvents([event]);
      await settle();
      expect(waiting.value).toBe('changed');
      expect(other.value).toBeUndefined();
      expect((await cache.resolve('a')).index).toBe(event.revision);
      cache.close();
    });

    it('an identical re-put or a re-read of the same content moves the revision, not the index, and wakes nobody', async () => {
      const { etcd, add, advance } = setup();
      etcd.put('a', '1');
      const { cache } = add();
      const { index } = await cache.resolve('a');
      const waiting = outcome(cache.waitForServiceChange('a', 600_000));

      const same = etcd.put('a', '1');
      cache.applyEvents([same]);
      etcd.put('unrelated', '1');
      advance(30_000); // CACHE_TTL_MS: the next lookup re-reads etcd in the background
      await cache.resolve('a');
      await settle();
      const after = await cache.resolve('a');
      expect(etcd.reads).toBe(2);
      expect(after.revision).toBeGreaterThan(same.revision);
      expect(after.index).toBe(index);
      expect(waiting.value).toBeUndefined();
      cache.close();
      await settle();
      expect(waiting.value).toBe('closed');
    });

    it('a re-read that finds different content (a change the watch did not deliver) wakes waiters', async () => {
      const { etcd, add, advance } = setup();
      etcd.put('a', '1');
      const { cache } = add();
      await cache.resolve('a');
      const waiting = outcome(cache.waitForServiceChange('a', 600_000));
      etcd.put('a', '2'); // not applied: as if the event was lost
      advance(30_000);
      await cache.resolve('a');
      await settle();
      expect(waiting.value).toBe('changed');
      expect((await cache.resolve('a')).index).toBe(etcd.revision);
    });

    it('keeps a waited-for unknown service in memory past its negative TTL, so its first registration wakes the waiter', async () => {
      const { clock, etcd, add } = setup();
      const { cache } = add();
      expect((await cache.resolve('soon')).instances).toHaveLength(0);
      const waiting = outcome(cache.waitForServiceChange('soon', 600_000));
      cache.sweep(clock.now + 60_000);
      cache.applyEvents([etcd.put('soon', '1')]);
      await settle();
      expect(waiting.value).toBe('changed');
      expect(cache.health().warmServices).toBe(1);
    });

    it('wakes services-list waiters when a service appears, not when an instance is updated', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      const { cache } = add();
      const { index } = await cache.listServices();
      const waiting = outcome(cache.waitForListChange(60_000));
      cache.applyEvents([etcd.put('a', '1', 'DOWN')]);
      await settle();
      expect(waiting.value).toBeUndefined();
      expect((await cache.listServices()).index).toBe(index);
      const created = etcd.put('b', '1');
      cache.applyEvents([created]);
      await settle();
      expect(waiting.value).toBe('changed');
      expect((await cache.listServices()).index).toBe(created.revision);
      cache.close();
    });

    it('a resync wakes waiters of changed documents only', async () => {
      const { etcd, add } = setup();
      etcd.put('a', '1');
      etcd.put('b', '1');
      const { cache, watch } = add();
      await Promise.all([cache.resolve('a'), cache.resolve('b')]);
      const a = outcome(cache.waitForServiceChange('a', 60_000));
      const b = outcome(cache.waitForServiceChange('b', 60_000));
      etcd.delete('b', '1');
      watch.epoch++;
      cache.resync(await etcd.scanAll());
      await settle();
      expect([a.value, b.value]).toEqual([undefined, 'changed']);
      cache.close();
    });
  });
});
