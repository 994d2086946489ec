import { IKeyValue } from 'etcd3';
import { KeyLayout, prefixRangeEnd } from '@app/registry';
import { ConnectionPool } from './connection-pool';

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

/**
 * The etcd operations of the registry, on pooled connections. Keys come from KeyLayout only, so
 * nothing here can address a key outside the gateway's prefix.
 */
export class RegistryStore {
  constructor(
    private readonly pool: ConnectionPool,
    readonly layout: KeyLayout,
  ) {}

  async grantLease(ttlSeconds: number): Promise<string> {
    const res = await this.pool.pick().lease.leaseGrant({ TTL: ttlSeconds, ID: 0 });
    return String(res.ID);
  }

  async revokeLease(leaseId: string): Promise<void> {
    await this.pool.pick().lease.leaseRevoke({ ID: leaseId });
  }

  /** Writes `key` under `leaseId` and returns what it replaced. */
  async put(key: string, value: string, leaseId: string): Promise<{ revision: string; previous?: StoredInstance }> {
    const res = await this.pool.pick().kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: leaseId, prev_kv: true });
    return { revision: String(res.header.revision), previous: res.prev_kv ? toStored(res.prev_kv) : undefined };
  }

  /** Writes `key` only if it does not exist; otherwise returns the instance that is there. */
  async putIfAbsent(key: string, value: string, leaseId: string): Promise<{ written: boolean; current?: StoredInstance }> {
    const res = await this.pool.pick().kv.txn({
      compare: [{ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: leaseId } }],
      failure: [{ request_range: { key: Buffer.from(key) } }],
    });
    if (res.succeeded) return { written: true };
    const kv = res.responses[0]?.response_range?.kvs?.[0];
    return { written: false, current: kv ? toStored(kv) : undefined };
  }

  /**
   * Replaces `key` under `leaseId` only if it is unchanged since `modRevision` (a Txn compare-and-swap),
   * so an update never overwrites a write it has not seen.
   */
  async compareAndPut(key: string, value: string, leaseId: string, modRevision: string): Promise<{ written: boolean; revision: string }> {
    const res = await this.pool.pick().kv.txn({
      compare: [{ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision }],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: leaseId } }],
    });
    return { written: res.succeeded, revision: String(res.header.revision) };
  }

  async get(key: string): Promise<StoredInstance | undefined> {
    const res = await this.pool.pick().kv.range({ key: Buffer.from(key) });
    return res.kvs[0] ? toStored(res.kvs[0]) : undefined;
  }

  /** Deletes `key` and returns what was there. */
  async delete(key: string): Promise<StoredInstance | undefined> {
    const res = await this.pool.pick().kv.deleteRange({ key: Buffer.from(key), prev_kv: true });
    return res.prev_kvs[0] ? toStored(res.prev_kvs[0]) : undefined;
  }

  /** Every instance of one service, at one revision. */
  listService(service: string): Promise<StoredRange> {
    return this.rangePrefix(this.layout.servicePrefix(service));
  }

  /**
   * Every instance of every service at ONE revision, read in pages of `pageSize` keys pinned to the
   * first page's revision: a single response for a large registry would exceed gRPC's default 4 MB
   * message limit. `keysOnly` leaves values empty (enough to count instances per service).
   */
  async scanAll(options: { keysOnly?: boolean; pageSize?: number } = {}): Promise<StoredRange> {
    const rangeEnd = prefixRangeEnd(this.layout.servicesRoot);
    const items: StoredInstance[] = [];
    let from = Buffer.from(this.layout.servicesRoot);
    let revision: string | undefined;
    for (;;) {
      const res = await this.pool.pick().kv.range({
        key: from,
        range_end: rangeEnd,
        limit: options.pageSize ?? 5_000,
        revision,
        keys_only: options.keysOnly ?? false,
      });
      revision ??= String(res.header.revision);
      items.push(...res.kvs.map(toStored));
      if (!res.more || res.kvs.length === 0) return { revision, items };
      // The next page starts right after the last key: etcd ranges are [key, range_end) in key order.
      from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
  }

  private async rangePrefix(prefix: string): Promise<StoredRange> {
    const res = await this.pool.pick().kv.range({ key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix) });
    return { revision: String(res.header.revision), items: res.kvs.map(toStored) };
  }
}

export function toStored(kv: IKeyValue): StoredInstance {
  return { key: kv.key.toString(), value: kv.value.toString(), leaseId: String(kv.lease), modRevision: String(kv.mod_revision) };
}
