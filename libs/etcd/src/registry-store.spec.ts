import { castGrpcError, IRangeRequest } from 'etcd3';
import { KeyLayout, RegistryBackendError } from '@app/registry';
import { ConnectionPool } from './connection-pool';
import { etcdFailure } from './etcd-errors';
import { DEFAULT_PAGE_SIZE, RegistryStore, smallerPage } from './registry-store';

const layout = new KeyLayout('/registry/');
const GRPC_MAX = 4 * 1024 * 1024;

function grpcError(code: number, status: string, details: string): Error {
  return castGrpcError(Object.assign(new Error(`${code} ${status}: ${details}`), { code, details }));
}

/**
 * etcd's Range as the store uses it: MVCC (a read at `revision` sees that revision's keys), `limit`
 * and `more`, keys in byte order, and grpc-js's 4 MB receive limit on the answer.
 */
class FakeKv {
  revision = 1;
  compactedBelow = 0;
  readonly requests: IRangeRequest[] = [];
  /** Runs before answering request number n (1-based): writes "between pages", compactions. */
  beforeRange: (n: number) => void = () => undefined;
  private readonly history: Array<{ key: string; value: string; createdAt: number }> = [];

  put(key: string, value = 'v'): void {
    this.history.push({ key, value, createdAt: ++this.revision });
  }

  async range(req: IRangeRequest) {
    this.requests.push(req);
    this.beforeRange(this.requests.length);
    const at = req.revision ? Number(req.revision) : this.revision;
    if (at < this.compactedBelow) throw grpcError(11, 'OUT_OF_RANGE', 'etcdserver: mvcc: required revision has been compacted');
    const from = Buffer.from(req.key as Buffer);
    const end = Buffer.from(req.range_end as Buffer);
    const all = this.history
      .filter((kv) => kv.createdAt <= at)
      .map((kv) => ({ ...kv, bytes: Buffer.from(kv.key) }))
      .filter((kv) => Buffer.compare(kv.bytes, from) >= 0 && Buffer.compare(kv.bytes, end) < 0)
      .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    const limit = Number(req.limit ?? 0) || all.length;
    const page = all.slice(0, limit);
    const size = page.reduce((sum, kv) => sum + kv.key.length + (req.keys_only ? 0 : kv.value.length), 0);
    if (size > GRPC_MAX) throw grpcError(8, 'RESOURCE_EXHAUSTED', `Received message larger than max (${size} vs ${GRPC_MAX})`);
    return {
      header: { revision: String(this.revision) },
      more: all.length > page.length,
      count: String(all.length),
      kvs: page.map((kv) => ({
        key: kv.bytes,
        value: Buffer.from(req.keys_only ? '' : kv.value),
        lease: '0',
        mod_revision: String(kv.createdAt),
        create_revision: String(kv.createdAt),
        version: '1',
      })),
    };
  }
}

function setup(options: { pageSize?: number } = {}) {
  const kv = new FakeKv();
  const pool = { pick: () => ({ kv }) } as unknown as ConnectionPool;
  return { kv, store: new RegistryStore(pool, layout, options) };
}

const id = (i: number) => `i${String(i).padStart(6, '0')}`;
const fill = (kv: FakeKv, service: string, count: number, value = 'v') => {
  for (let i = 0; i < count; i++) kv.put(layout.instanceKey(service, id(i)), value);
};

describe('RegistryStore paged reads', () => {
  it('reads a service in pages of the configured size, pinned to the first page revision, each page after the last key', async () => {
    const { kv, store } = setup({ pageSize: 2_000 });
    fill(kv, 'big', 5_000);
    fill(kv, 'bigger', 10); // shares the prefix "big" but not "big/"
    const firstRevision = String(kv.revision);

    const range = await store.listService('big');

    expect(range.revision).toBe(firstRevision);
    expect(range.items).toHaveLength(5_000);
    expect(range.items.map((item) => item.key)).toEqual(Array.from({ length: 5_000 }, (_, i) => layout.instanceKey('big', id(i))));
    expect(kv.requests.map((r) => r.limit)).toEqual([2_000, 2_000, 2_000]);
    expect(kv.requests[0].revision).toBeUndefined();
    expect(kv.requests.slice(1).map((r) => r.revision)).toEqual([firstRevision, firstRevision]);
    expect(Buffer.from(kv.requests[1].key as Buffer).toString()).toBe(`${layout.instanceKey('big', id(1_999))}\0`);
  });

  it('returns exactly one revision: keys written between pages are not in the result', async () => {
    const { kv, store } = setup({ pageSize: 100 });
    fill(kv, 'a', 250);
    const revision = String(kv.revision);
    kv.beforeRange = (n) => {
      if (n === 2) kv.put(layout.instanceKey('a', 'zzz-late'));
    };

    const range = await store.listService('a');

    expect(range.revision).toBe(revision);
    expect(range.items).toHaveLength(250);
    expect(range.items.some((item) => item.key.endsWith('zzz-late'))).toBe(false);
  });

  it('needs one Range for a service that fits one page, and one for an empty service', async () => {
    const { kv, store } = setup();
    fill(kv, 'small', 3);
    expect((await store.listService('small')).items).toHaveLength(3);
    expect((await store.listService('none')).items).toHaveLength(0);
    expect(kv.requests).toHaveLength(2);
  });

  it(`defaults to pages of ${DEFAULT_PAGE_SIZE} keys, for scanAll too, unless the caller asks for another size`, async () => {
    const { kv, store } = setup();
    fill(kv, 'a', 1);
    await store.listService('a');
    await store.scanAll({ keysOnly: true });
    await store.scanAll({ pageSize: 7 });
    expect(kv.requests.map((r) => r.limit)).toEqual([DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE, 7]);
    expect(kv.requests[1].keys_only).toBe(true);
    expect(() => setup({ pageSize: 0 })).toThrow(/page size/);
  });

  it('reads a page again in smaller pages when its answer exceeds the gRPC message limit, and keeps the smaller size', async () => {
    const { kv, store } = setup({ pageSize: 2_000 });
    fill(kv, 'fat', 3_000, 'x'.repeat(2_500)); // 2,000 of them are ~5 MB, over the 4 MB limit

    const range = await store.listService('fat');

    expect(range.items).toHaveLength(3_000);
    expect(new Set(range.items.map((item) => item.key)).size).toBe(3_000);
    // One refused page, then pages that fit: 2,000 * 4 MB / ~5 MB / 1.25 = 1,340 keys, at most half.
    expect(kv.requests.map((r) => r.limit)).toEqual([2_000, 1_000, 1_000, 1_000]);
    expect(kv.requests.map((r) => r.revision)).toEqual([undefined, undefined, range.revision, range.revision]);
  });

  it('starts over once at the current revision when etcd compacted the pinned one between pages', async () => {
    const { kv, store } = setup({ pageSize: 10 });
    fill(kv, 'a', 25);
    kv.beforeRange = (n) => {
      if (n === 2) {
        kv.put(layout.instanceKey('a', 'zzz-new'));
        kv.compactedBelow = kv.revision;
      }
    };

    const range = await store.listService('a');

    expect(range.revision).toBe(String(kv.revision));
    expect(range.items).toHaveLength(26);
    expect(kv.requests).toHaveLength(2 + 3);
  });

  it('gives up after the second compaction, with the etcd error labelled by what it was reading', async () => {
    const { kv, store } = setup({ pageSize: 10 });
    fill(kv, 'a', 25);
    kv.beforeRange = (n) => {
      if (n > 1) kv.compactedBelow = ++kv.revision;
    };

    const err = await store.listService('a').catch((e: unknown) => e);

    const failure = etcdFailure(err, 'fallback');
    expect(failure).toBeInstanceOf(RegistryBackendError);
    expect(failure?.message).toMatch(/^etcd error while reading service a: OUT_OF_RANGE \(etcdserver: mvcc: required revision has been compacted\)$/);
  });

  it('labels a failed single-key call with the instance it was about', async () => {
    const { kv, store } = setup();
    kv.beforeRange = () => {
      throw grpcError(7, 'PERMISSION_DENIED', 'etcdserver: permission denied');
    };
    const err = await store.get(layout.instanceKey('payments', 'pod-1')).catch((e: unknown) => e);
    expect(etcdFailure(err, 'fallback')?.message).toBe('etcd error while reading instance payments/pod-1: PERMISSION_DENIED (etcdserver: permission denied)');
  });
});

describe('smallerPage', () => {
  const refused = (size: number) => grpcError(8, 'RESOURCE_EXHAUSTED', `Received message larger than max (${size} vs ${GRPC_MAX})`);

  it('shrinks to what the reported size says fits, with a margin, and at least by half', () => {
    expect(smallerPage(2_000, refused(32 * 1024 * 1024))).toBe(200);
    expect(smallerPage(2_000, refused(GRPC_MAX + 1))).toBe(1_000);
  });

  it('halves when the size is unknown, and never goes below one key', () => {
    expect(smallerPage(2_000, new Error('?'))).toBe(1_000);
    expect(smallerPage(1, refused(10 * GRPC_MAX))).toBe(1);
    expect(smallerPage(3, new Error('?'))).toBe(1);
  });
});
