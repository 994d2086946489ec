import { IKeyValue } from 'etcd3';
import { KeyLayout, prefixRangeEnd } from '@app/registry';
import { ConnectionPool } from './connection-pool';
import { isResponseTooLarge, isRevisionCompacted, responseSizeOf, withEtcdAction } from './etcd-errors';

/** An instance key as etcd holds it. */
export interface StoredInstance {
  key: string;
  value: string;
  leaseId: string;
  modRevision: string;
}

export interface StoredRange {
  /** etcd's revision at the time of the read: a snapshot is exactly this revision's state. */
  revision: string;
  items: StoredInstance[];
}

export interface RegistryStoreOptions {
  /**
   * Keys per Range page of a multi-key read (a service, every instance). A single answer must stay
   * under gRPC's 4 MB receive limit: 2,000 typical instances (~250 bytes each) are ~0.5 MB. A page
   * that still does not fit (large metadata) is read again in smaller pages.
   */
  pageSize?: number;
}

export const DEFAULT_PAGE_SIZE = 2_000;

/**
 * Nested guarded deletes per request. etcd gives nested Txns the room left by the outer ones in
 * --max-txn-ops (128 by default): at most 127 one-compare deletes fit; 64 leaves room for a fence
 * compare each and for clusters configured lower.
 */
export const GUARDED_DELETES_PER_REQUEST = 64;

/** A key to delete only if unchanged since `modRevision` (and `fence`, if given, unchanged too). */
export interface GuardedDelete {
  key: string;
  modRevision: string;
  fence?: { key: string; modRevision: string };
}

/**
 * The etcd operations of the registry, on pooled connections. Keys come from KeyLayout only, so
 * nothing here can address a key outside the gateway's prefix. A failed call rejects with etcd3's own
 * error, labelled with what the store was doing (withEtcdAction) for the message clients see.
 */
export class RegistryStore {
  readonly pageSize: number;

  constructor(
    private readonly pool: ConnectionPool,
    readonly layout: KeyLayout,
    options: RegistryStoreOptions = {},
  ) {
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1) throw new Error(`page size must be a positive integer: ${this.pageSize}`);
  }

  grantLease(ttlSeconds: number): Promise<string> {
    return this.call(`granting a ${ttlSeconds} s lease`, async () => {
      const res = await this.pool.pick().lease.leaseGrant({ TTL: ttlSeconds, ID: 0 });
      return String(res.ID);
    });
  }

  /**
   * Grants a shared lease and writes its record (`<prefix>gateway/leases/<id>` = {owner, classTtl}) with
   * it, so every replica learns its owner and class from the watch and the record vanishes with the
   * lease. The record's mod_revision is what an adopter compares and the expiry sweep fences on.
   */
  grantSharedLease(classTtl: number, owner: string): Promise<{ leaseId: string; recordRevision: string }> {
    return this.call(`granting a ${classTtl} s shared lease`, async () => {
      const connection = this.pool.pick();
      const res = await connection.lease.leaseGrant({ TTL: classTtl, ID: 0 });
      const leaseId = String(res.ID);
      const put = await connection.kv.txn({
        compare: [],
        success: [{ request_put: { key: Buffer.from(this.layout.leaseRecordKey(leaseId)), value: Buffer.from(JSON.stringify({ owner, classTtl })), lease: leaseId } }],
      });
      return { leaseId, recordRevision: String(put.header.revision) };
    });
  }

  /**
   * Takes over a shared lease: rewrites its record naming `owner`, only if the record is unchanged since
   * `recordRevision` (exactly one of the replicas that try wins). Returns the record's new revision, or
   * undefined when another replica won (or the lease is gone).
   */
  adoptSharedLease(leaseId: string, classTtl: number, owner: string, recordRevision: string): Promise<string | undefined> {
    const key = Buffer.from(this.layout.leaseRecordKey(leaseId));
    return this.call(`adopting shared lease ${leaseId}`, async () => {
      const res = await this.pool.pick().kv.txn({
        compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: recordRevision }],
        success: [{ request_put: { key, value: Buffer.from(JSON.stringify({ owner, classTtl })), lease: leaseId } }],
      });
      return res.succeeded ? String(res.header.revision) : undefined;
    });
  }

  /**
   * Writes each item only where its key does not exist (nested Txns `create_revision == 0`,
   * GUARDED_DELETES_PER_REQUEST per request): re-puts after a lease was lost never overwrite a
   * re-registration through another replica. Returns, per item, whether it was written.
   */
  async putManyIfAbsent(items: readonly { key: string; value: string; leaseId: string }[]): Promise<boolean[]> {
    const written: boolean[] = [];
    for (let i = 0; i < items.length; i += GUARDED_DELETES_PER_REQUEST) {
      const chunk = items.slice(i, i + GUARDED_DELETES_PER_REQUEST);
      const res = await this.call(`re-writing ${chunk.length} instances of a lost lease`, () =>
        this.pool.pick().kv.txn({
          compare: [],
          success: chunk.map((item) => ({
            request_txn: {
              compare: [{ key: Buffer.from(item.key), target: 'Create' as const, result: 'Equal' as const, create_revision: 0 }],
              success: [{ request_put: { key: Buffer.from(item.key), value: Buffer.from(item.value), lease: item.leaseId } }],
              failure: [],
            },
          })),
        }),
      );
      chunk.forEach((_, j) => written.push(res.responses[j]?.response_txn?.succeeded === true));
    }
    return written;
  }

  /** Every key under `<prefix>gateway/` (presence keys, lease records) at one revision. */
  scanGateway(): Promise<StoredRange> {
    return this.call('reading the gateway records', () => this.readPaged(this.layout.gatewayRoot, {}));
  }

  revokeLease(leaseId: string): Promise<void> {
    return this.call(`revoking lease ${leaseId}`, async () => {
      await this.pool.pick().lease.leaseRevoke({ ID: leaseId });
    });
  }

  /** Writes `key` under `leaseId` and returns what it replaced. */
  put(key: string, value: string, leaseId: string): Promise<{ revision: string; previous?: StoredInstance }> {
    return this.call(`writing ${this.describe(key)}`, async () => {
      const res = await this.pool.pick().kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: leaseId, prev_kv: true });
      return { revision: String(res.header.revision), previous: res.prev_kv ? toStored(res.prev_kv) : undefined };
    });
  }

  /**
   * Writes every item in ONE Txn (no compare: the puts always apply) and returns, per item in order,
   * what it replaced. Atomic: one item etcd refuses (an expired lease) fails them all; PutBatcher
   * then writes them one by one. Keys must be distinct (etcd refuses duplicates in one Txn).
   */
  putMany(items: readonly { key: string; value: string; leaseId: string }[]): Promise<Array<{ revision: string; previous?: StoredInstance }>> {
    return this.call(`writing ${items.length} instances in one transaction`, async () => {
      const res = await this.pool.pick().kv.txn({
        compare: [],
        success: items.map((item) => ({ request_put: { key: Buffer.from(item.key), value: Buffer.from(item.value), lease: item.leaseId, prev_kv: true } })),
      });
      const revision = String(res.header.revision);
      return items.map((_, i) => {
        const prev = res.responses[i]?.response_put?.prev_kv;
        return { revision, previous: prev ? toStored(prev) : undefined };
      });
    });
  }

  /** Writes `key` only if it does not exist; otherwise returns the instance that is there. */
  putIfAbsent(key: string, value: string, leaseId: string): Promise<{ written: boolean; current?: StoredInstance }> {
    return this.call(`re-writing ${this.describe(key)}`, async () => {
      const res = await this.pool.pick().kv.txn({
        compare: [{ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: leaseId } }],
        failure: [{ request_range: { key: Buffer.from(key) } }],
      });
      if (res.succeeded) return { written: true };
      const kv = res.responses[0]?.response_range?.kvs?.[0];
      return { written: false, current: kv ? toStored(kv) : undefined };
    });
  }

  /**
   * Replaces `key` under `leaseId` only if it is unchanged since `modRevision` (a Txn compare-and-swap),
   * so an update never overwrites a write it has not seen.
   */
  compareAndPut(key: string, value: string, leaseId: string, modRevision: string): Promise<{ written: boolean; revision: string }> {
    return this.call(`updating ${this.describe(key)}`, async () => {
      const res = await this.pool.pick().kv.txn({
        compare: [{ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision }],
        success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: leaseId } }],
      });
      return { written: res.succeeded, revision: String(res.header.revision) };
    });
  }

  /**
   * Deletes each key only if it is unchanged since `modRevision` (and, with `fence`, only while that
   * other key is unchanged too: a lease record, so a replica that lost a lease cannot delete its keys),
   * as nested Txns, GUARDED_DELETES_PER_REQUEST per request. Returns, per item in order, whether it was
   * deleted. A re-registered or patched instance (its mod_revision moved) is never deleted. Measured on
   * etcd 3.4.23: 20 us of etcd CPU per nested delete vs 335 us for one Txn per key
   * (bench/results/shared-leases.md). The expiry sweep of shared leases uses it.
   */
  async deleteIfUnchanged(items: readonly GuardedDelete[]): Promise<boolean[]> {
    const deleted: boolean[] = [];
    for (let i = 0; i < items.length; i += GUARDED_DELETES_PER_REQUEST) {
      const chunk = items.slice(i, i + GUARDED_DELETES_PER_REQUEST);
      const res = await this.call(`deleting ${chunk.length} expired instances`, () =>
        this.pool.pick().kv.txn({
          compare: [],
          success: chunk.map((item) => ({
            request_txn: {
              compare: [item, ...(item.fence ? [item.fence] : [])].map((c) => ({ key: Buffer.from(c.key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: c.modRevision })),
              success: [{ request_delete_range: { key: Buffer.from(item.key) } }],
              failure: [],
            },
          })),
        }),
      );
      chunk.forEach((_, j) => deleted.push(res.responses[j]?.response_txn?.succeeded === true));
    }
    return deleted;
  }

  get(key: string): Promise<StoredInstance | undefined> {
    return this.call(`reading ${this.describe(key)}`, async () => {
      const res = await this.pool.pick().kv.range({ key: Buffer.from(key) });
      return res.kvs[0] ? toStored(res.kvs[0]) : undefined;
    });
  }

  /** Deletes `key` and returns what was there. */
  delete(key: string): Promise<StoredInstance | undefined> {
    return this.call(`deleting ${this.describe(key)}`, async () => {
      const res = await this.pool.pick().kv.deleteRange({ key: Buffer.from(key), prev_kv: true });
      return res.prev_kvs[0] ? toStored(res.prev_kvs[0]) : undefined;
    });
  }

  /** Every instance of one service at ONE revision, paged like scanAll (a service can be 50k instances). */
  listService(service: string): Promise<StoredRange> {
    return this.call(`reading service ${service}`, () => this.readPaged(this.layout.servicePrefix(service), {}));
  }

  /**
   * Every instance of every service at ONE revision. `keysOnly` leaves values empty (enough to count
   * instances per service).
   */
  scanAll(options: { keysOnly?: boolean; pageSize?: number } = {}): Promise<StoredRange> {
    return this.call(options.keysOnly ? 'listing services' : 'reading every instance', () => this.readPaged(this.layout.servicesRoot, options));
  }

  /**
   * Every key under `prefix` in pages of `pageSize` keys pinned to the first page's revision, so the
   * result is exactly one revision's state however many pages it takes. If etcd compacts that revision
   * between two pages, the read starts over once at the current revision.
   */
  private async readPaged(prefix: string, options: { keysOnly?: boolean; pageSize?: number }): Promise<StoredRange> {
    try {
      return await this.readPages(prefix, options);
    } catch (err) {
      if (!isRevisionCompacted(err)) throw err;
      return this.readPages(prefix, options);
    }
  }

  private async readPages(prefix: string, options: { keysOnly?: boolean; pageSize?: number }): Promise<StoredRange> {
    const rangeEnd = prefixRangeEnd(prefix);
    const items: StoredInstance[] = [];
    let from = Buffer.from(prefix);
    let revision: string | undefined;
    let limit = options.pageSize ?? this.pageSize;
    for (;;) {
      let res;
      try {
        res = await this.pool.pick().kv.range({ key: from, range_end: rangeEnd, limit, revision, keys_only: options.keysOnly ?? false });
      } catch (err) {
        if (!isResponseTooLarge(err) || limit === 1) throw err;
        limit = smallerPage(limit, err);
        continue;
      }
      revision ??= String(res.header.revision);
      for (const kv of res.kvs) items.push(toStored(kv));
      if (!res.more || res.kvs.length === 0) return { revision, items };
      // The next page starts right after the last key: etcd ranges are [key, range_end) in key order.
      from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
  }

  private async call<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw withEtcdAction(err, action);
    }
  }

  private describe(key: string): string {
    const address = this.layout.parseInstanceKey(key);
    return address ? `instance ${address.service}/${address.id}` : `key ${key}`;
  }
}

/**
 * The page size for reading again a page whose answer was over gRPC's limit: at least half, less when
 * grpc-js reported the size, with a margin because the next keys' values may be larger than these.
 */
export function smallerPage(limit: number, err: unknown): number {
  const seen = responseSizeOf(err);
  const fitting = seen ? (limit * seen.max) / seen.size / 1.25 : limit / 2;
  return Math.max(1, Math.floor(Math.min(limit / 2, fitting)));
}

export function toStored(kv: IKeyValue): StoredInstance {
  return { key: kv.key.toString(), value: kv.value.toString(), leaseId: String(kv.lease), modRevision: String(kv.mod_revision) };
}
