import { castGrpcError } from 'etcd3';
import type { StoredRange } from '@app/etcd';
import { encodeRecord, KeyLayout, RegistryBackendError, RegistryUnavailableError } from '@app/registry';
import { MemorySharedStore } from './memory-shared-store';
import { RegistryCache, RegistrySource } from './registry-cache';

const layout = new KeyLayout('/registry/');

function grpcError(code: number, status: string, details: string): Error {
  return castGrpcError(Object.assign(new Error(`${code} ${status}: ${details}`), { code, details }));
}

const tooLarge = () => grpcError(8, 'RESOURCE_EXHAUSTED', 'Received message larger than max (5123456 vs 4194304)');
const unreachable = () => grpcError(14, 'UNAVAILABLE', 'No connection established');

/** An etcd holding one instance of service "a", whose reads can be made to fail. */
class FailingEtcd implements RegistrySource {
  readonly layout = layout;
  reads = 0;
  failWith: (() => Error) | undefined;

  async listService(service: string): Promise<StoredRange> {
    this.reads++;
    if (this.failWith) throw this.failWith();
    const value = encodeRecord({ service, id: '1', address: '10.0.0.1', port: 80, ttl: 30, metadata: {}, tags: [], weight: 100, status: 'UP', registeredAt: '' });
    return { revision: '10', items: [{ key: layout.instanceKey(service, '1'), value, leaseId: '1', modRevision: '10' }] };
  }

  async scanAll(): Promise<StoredRange> {
    if (this.failWith) throw this.failWith();
    return { revision: '10', items: [] };
  }
}

function setup() {
  const clock = { now: 1_000_000 };
  const etcd = new FailingEtcd();
  const watch = { epoch: 1, confirmedAt: clock.now };
  const cache = new RegistryCache(etcd, new MemorySharedStore(() => clock.now), watch, {
    ttlMs: 30_000,
    staleAfterMs: 3_000,
    negativeTtlMs: 5_000,
    sharedTtlMs: 600_000,
    lockTtlMs: 2_000,
    backoffMinMs: 1_000,
    backoffMaxMs: 8_000,
    now: () => clock.now,
    sleep: () => new Promise((resolve) => setImmediate(resolve)),
    random: () => 0,
  });
  return { clock, etcd, watch, cache };
}

describe('RegistryCache on etcd errors', () => {
  it('reports a cold read that etcd answers with an error as etcd_error, not as unavailable', async () => {
    const { etcd, cache } = setup();
    etcd.failWith = tooLarge;
    const err = await cache.resolve('a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryBackendError);
    expect((err as RegistryBackendError).grpcStatus).toBe('RESOURCE_EXHAUSTED');
    expect((err as Error).message).toContain('svc:a');
  });

  it('answers the same error during the backoff window without reading etcd again, then reads again', async () => {
    const { clock, etcd, cache } = setup();
    etcd.failWith = () => grpcError(7, 'PERMISSION_DENIED', 'etcdserver: permission denied');
    await expect(cache.resolve('a')).rejects.toBeInstanceOf(RegistryBackendError);
    await expect(cache.resolve('a')).rejects.toMatchObject({ code: 'etcd_error', grpcStatus: 'PERMISSION_DENIED' });
    expect(etcd.reads).toBe(1);

    etcd.failWith = undefined;
    clock.now += 1_000;
    expect((await cache.resolve('a')).instances).toHaveLength(1);
    expect(etcd.reads).toBe(2);
  });

  it('still reports unreachability as registry_unavailable, during the backoff window too', async () => {
    const { etcd, cache } = setup();
    etcd.failWith = unreachable;
    await expect(cache.resolve('a')).rejects.toBeInstanceOf(RegistryUnavailableError);
    await expect(cache.resolve('a')).rejects.toBeInstanceOf(RegistryUnavailableError);
    expect(etcd.reads).toBe(1);
  });

  it('keeps answering a cached service from its snapshot when a refresh gets an etcd error', async () => {
    const { clock, etcd, watch, cache } = setup();
    expect((await cache.resolve('a')).instances).toHaveLength(1);
    etcd.failWith = tooLarge;
    clock.now += 31_000; // past the TTL: the next lookup refreshes in the background
    watch.confirmedAt = clock.now;
    const answer = await cache.resolve('a');
    expect(answer.instances).toHaveLength(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(etcd.reads).toBe(2);
    const later = await cache.resolve('a');
    expect(later.instances).toHaveLength(1);
    expect(later.stale).toBe(false); // the watch still confirms it
  });

  it('reports the services list the same way', async () => {
    const { etcd, cache } = setup();
    etcd.failWith = tooLarge;
    await expect(cache.listServices()).rejects.toBeInstanceOf(RegistryBackendError);
  });
});
