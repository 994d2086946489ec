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

  /** Every instance of every service, at one revision. */
  listAll(): Promise<StoredRange> {
    return this.rangePrefix(this.layout.servicesRoot);
  }

  private async rangePrefix(prefix: string): Promise<StoredRange> {
    const res = await this.pool.pick().kv.range({ key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix) });
    return { revision: String(res.header.revision), items: res.kvs.map(toStored) };
  }
}

export function toStored(kv: IKeyValue): StoredInstance {
  return { key: kv.key.toString(), value: kv.value.toString(), leaseId: String(kv.lease), modRevision: String(kv.mod_revision) };
}
