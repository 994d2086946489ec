import { decodeRecord, KeyLayout } from '@app/registry';
import type { RegistryEvent } from './registry-watch';
import type { StoredInstance, StoredRange } from './registry-store';

export interface InstanceDirectoryOptions {
  /**
   * Whether this replica heard `key`'s pod lately. The value of such a key is kept for a while after
   * etcd deleted it: a re-put after its shared lease was lost writes it back (deletedOn(), latest()).
   */
  retain?(key: string): boolean;
}

/** Longest TTL is 300 s: a deleted value older than that is of no use unless its instance is still tracked. */
const DELETED_KEEP_MS = 300_000;

/**
 * Every instance in the registry as this replica's watch knows it: key -> lease id and value. Built
 * from one paged read at start and kept current by the watch (every put event carries kv.lease), so a
 * heartbeat for an instance another replica registered costs no etcd call here, and a replica that
 * takes over the heartbeats of a dead one reads nothing from etcd.
 *
 * It is also the one place the replica keeps instance values (InstanceValues): the lease table keeps
 * none, the registrar reports its own writes here (written()) and a re-grant reads latest().
 *
 * Memory (100k instances per replica, bench/results/memory.md): one row per instance in arrays (key,
 * value, lease as int64, observedAt) plus a Map entry key -> row; no object per instance. A watch event
 * that repeats the value already held (a registrar's own write coming back) keeps the string held.
 *
 * Only `current` answers are trusted: before the initial read, or while the watch is down, a missing
 * key may just be one the watch has not delivered yet, and the caller falls back to reading etcd.
 */
export class InstanceDirectory {
  private readonly rows = new Map<string, number>();
  /**
   * service -> its rows (unordered): the lookup index. Lookups, the service list and its counts are
   * derived from it (RegistryReadModel in @app/cache), so a replica answers them from memory once
   * synced. A row's place in its list is kept in `positions`, so a delete is O(1) (swap with the
   * last). About 12 bytes per instance; a Map of id -> row cost ~78 (bench/experiments/memory-probe.ts).
   *
   * Only what the initial read and the watch delivered is indexed: a row the registrar wrote (written())
   * is indexed when its watch event arrives, so every replica's lookups show the same registry, as of
   * the revision its watch reached, and a client moving between replicas never sees an instance vanish.
   * `positions[row]` is -1 for a row not indexed (yet).
   */
  private readonly byService = new Map<string, number[]>();
  private positions = new Int32Array(1024);
  private keys: Array<string | undefined> = [];
  private values: Array<string | undefined> = [];
  private leases = new BigInt64Array(1024);
  /** Epoch ms the watch delivered the put that brought the current lease; 0 = from a read. */
  private observed = new Float64Array(1024);
  /** etcd's mod_revision of the value held (what a guarded delete compares); 0 = not known yet. */
  private modRevisions = new Float64Array(1024);
  /** Keys per lease (shared leases fill to LEASE_MAX_KEYS: the pool reads its counts here). */
  private readonly leaseCounts = new Map<bigint, number>();
  private freeRows: number[] = [];
  /**
   * Instances deleted lately (insertion order = deletion order), with what they held: deletions right
   * after an etcd outage (see recentlyDeleted()) and deletions of instances this replica renews (latest()).
   */
  private readonly deleted = new Map<string, DeletedEntry>();
  private synced = false;
  private outageAftermathUntil = 0;

  constructor(
    private readonly layout: KeyLayout,
    private readonly options: InstanceDirectoryOptions = {},
  ) {}

  get size(): number {
    return this.rows.size;
  }

  /** The initial read (or a rebuild after a compaction) has been applied. */
  get isSynced(): boolean {
    return this.synced;
  }

  /**
   * `observedAt` is when the watch delivered the put (epoch ms): the lease was granted or replaced
   * about then. 0 for what the initial read found (when that lease was last renewed is unknown).
   */
  get(key: string): (StoredInstance & { observedAt: number }) | undefined {
    const row = this.rows.get(key);
    if (row === undefined) return undefined;
    return { key, value: this.values[row]!, leaseId: String(this.leases[row]), modRevision: String(this.modRevisions[row]), observedAt: this.observed[row] };
  }

  has(key: string): boolean {
    return this.rows.has(key);
  }

  /** The lease of `key` as etcd's int64 (0n = none), without building a row object: the heartbeat path. */
  leaseOf(key: string): bigint | undefined {
    const row = this.rows.get(key);
    return row === undefined ? undefined : this.leases[row];
  }

  /** Keys the directory holds on `leaseId`. */
  countOn(leaseId: string): number {
    return this.leaseCounts.get(toLease(leaseId)) ?? 0;
  }

  /**
   * Calls `visit` for every instance on one of `leaseIds` (one walk over the rows: the expiry sweep's
   * candidates; ~20 ms per million rows).
   */
  forEachOnLeases(leaseIds: ReadonlySet<string>, visit: (key: string, leaseId: string, modRevision: string, value: string, observedAt: number) => void): void {
    if (leaseIds.size === 0) return;
    const wanted = new Set([...leaseIds].map(toLease));
    for (const row of this.rows.values()) {
      const lease = this.leases[row];
      if (wanted.has(lease)) visit(this.keys[row]!, String(lease), String(this.modRevisions[row]), this.values[row]!, this.observed[row]);
    }
  }

  /** Instances deleted lately that were on `leaseId` (a lost lease: etcd deleted its keys), with their values. */
  deletedOn(leaseId: string): Array<{ key: string; value: string }> {
    const found: Array<{ key: string; value: string }> = [];
    for (const [key, entry] of this.deleted) if (entry.leaseId === leaseId) found.push({ key, value: entry.value });
    return found;
  }

  /** Services with at least one instance, with their instance counts (unordered). */
  serviceCounts(): Array<{ service: string; instances: number }> {
    const counts: Array<{ service: string; instances: number }> = [];
    for (const [service, rows] of this.byService) counts.push({ service, instances: rows.length });
    return counts;
  }

  instanceCount(service: string): number {
    return this.byService.get(service)?.length ?? 0;
  }

  /** The instances of `service` as [id, stored value] (unordered; none for an unknown service). */
  *instancesOf(service: string): IterableIterator<[string, string]> {
    const rows = this.byService.get(service);
    if (!rows) return;
    // The id is the rest of the key (KeyLayout: <servicesRoot><service>/<id>): not kept twice.
    const skip = this.layout.servicesRoot.length + service.length + 1;
    for (const row of rows) yield [this.keys[row]!.slice(skip), this.values[row]!];
  }

  /** Replaces everything with one consistent read (the watch resumes right after its revision). */
  replace(range: StoredRange, now = Date.now()): void {
    const retain = this.options.retain;
    if (retain && this.rows.size) {
      // A tracked instance whose key is gone (its lease expired while the watch was away) may still be
      // re-granted: keep its last value as if the watch had delivered the deletion.
      const present = new Set(range.items.map((item) => item.key));
      for (const [key, row] of this.rows) if (!present.has(key) && retain(key)) this.remember(key, this.values[row]!, String(this.leases[row]), now, false);
    }
    this.rows.clear();
    this.leaseCounts.clear();
    this.byService.clear();
    this.keys = [];
    this.values = [];
    this.freeRows = [];
    for (const item of range.items) {
      this.set(item.key, item.value, item.leaseId, 0, true, item.modRevision);
    }
    this.synced = true;
  }

  /**
   * The watch came back after etcd was unreachable: deletions delivered until `until` are likely
   * leases that expired because nobody could renew them, not pods that went silent. Only those are
   * remembered for recentlyDeleted(); in normal operation a pod silent past its TTL gets 404.
   */
  outageEndedAt(now: number, windowMs = 30_000): void {
    this.outageAftermathUntil = now + windowMs;
  }

  /**
   * What a key held if it was deleted within its TTL: after an etcd outage every lease expired at once
   * and a pod's next heartbeat may land on any replica, not only the one that tracked it. Such a
   * heartbeat re-grants (exactly like a heartbeat after a TTL-0 answer), instead of a 404 that would
   * make the pod register again.
   */
  recentlyDeleted(key: string, now = Date.now()): { value: string } | undefined {
    const entry = this.deleted.get(key);
    return entry && entry.outage && now - entry.deletedAt <= entry.ttlMs ? { value: entry.value } : undefined;
  }

  /** What `key` held when etcd deleted it lately (kept for instances heard lately and after outages), and its lease. */
  lastDeleted(key: string): { value: string; leaseId: string; deletedAt: number } | undefined {
    return this.deleted.get(key);
  }

  /** The registrar wrote `value` under `leaseId` at `modRevision`; the watch's copy of it will not be kept twice. */
  written(key: string, value: string, leaseId: string, now: number, modRevision?: string): string {
    this.deleted.delete(key);
    return this.set(key, value, leaseId, now, false, modRevision);
  }

  /** The latest value of `key`, also when etcd deleted it lately (see DELETED_KEEP_MS). */
  latest(key: string): string | undefined {
    const row = this.rows.get(key);
    return row === undefined ? this.deleted.get(key)?.value : this.values[row];
  }

  apply(events: readonly RegistryEvent[], now = Date.now()): void {
    this.pruneDeleted(now);
    for (const event of events) {
      const key = this.layout.instanceKey(event.service, event.id);
      if (event.type === 'delete') {
        const row = this.rows.get(key);
        this.deleted.delete(key);
        if (row === undefined) continue;
        const value = this.values[row]!;
        const outage = now <= this.outageAftermathUntil;
        if (outage || this.options.retain?.(key)) this.remember(key, value, String(this.leases[row]), now, outage);
        this.count(this.leases[row], -1);
        this.rows.delete(key);
        this.unindex(event.service, row);
        this.keys[row] = this.values[row] = undefined;
        this.freeRows.push(row);
      } else if (event.value !== undefined && event.leaseId !== undefined) {
        this.deleted.delete(key);
        this.set(key, event.value, event.leaseId, now, true, String(event.revision));
      }
    }
  }

  /** Upserts a row (indexed for lookups when `watched`); returns the key string the directory holds (the first one it saw). */
  private set(key: string, value: string, leaseId: string, now: number, watched: boolean, modRevision?: string): string {
    const lease = toLease(leaseId);
    const revision = Number(modRevision ?? 0);
    let row = this.rows.get(key);
    if (row === undefined) {
      const address = this.layout.parseInstanceKey(key);
      if (!address) return key;
      // Keys are built by concatenation (KeyLayout.instanceKey): a rope of 3-4 string objects, twice
      // the bytes of the flat string. Held for as long as the instance lives, so flatten it once.
      key = Buffer.from(key).toString();
      row = this.freeRows.pop() ?? this.keys.length;
      if (row >= this.leases.length) this.grow();
      this.positions[row] = -1;
      if (watched) this.index(address.service, row);
      this.rows.set(key, row);
      this.keys[row] = key;
      this.values[row] = value;
      this.leases[row] = lease;
      this.count(lease, 1);
      this.observed[row] = now;
      this.modRevisions[row] = revision;
      return key;
    }
    if (watched && this.positions[row] === -1) this.index(this.layout.parseInstanceKey(key)!.service, row);
    // A put that keeps the lease (a PATCH, a re-registration with the same TTL, our own write coming
    // back through the watch) says nothing new about when the lease was renewed: keep the earlier observation.
    // Our own write's revision may arrive after the watch's (or not at all): keep the highest seen.
    if (revision > this.modRevisions[row]) this.modRevisions[row] = revision;
    if (this.leases[row] !== lease) {
      this.count(this.leases[row], -1);
      this.count(lease, 1);
      this.leases[row] = lease;
      this.observed[row] = now;
    }
    // An equal value (our own write coming back) keeps the string already held: one copy, not two.
    if (this.values[row] !== value) this.values[row] = value;
    return this.keys[row]!;
  }

  private index(service: string, row: number): void {
    let rows = this.byService.get(service);
    if (!rows) this.byService.set(service, (rows = []));
    this.positions[row] = rows.push(row) - 1;
  }

  private unindex(service: string, row: number): void {
    const rows = this.byService.get(service);
    const at = this.positions[row];
    if (!rows || at === -1) return;
    const last = rows.pop()!;
    if (last !== row) {
      rows[at] = last;
      this.positions[last] = at;
    }
    this.positions[row] = -1;
    if (rows.length === 0) this.byService.delete(service);
  }

  private count(lease: bigint, delta: number): void {
    if (lease === 0n) return;
    const n = (this.leaseCounts.get(lease) ?? 0) + delta;
    if (n > 0) this.leaseCounts.set(lease, n);
    else this.leaseCounts.delete(lease);
  }

  private remember(key: string, value: string, leaseId: string, now: number, outage: boolean): void {
    const record = outage ? decodeRecord(value) : undefined;
    if (outage && !record) return;
    this.deleted.set(key, { value, leaseId, deletedAt: now, ttlMs: (record?.ttl ?? 0) * 1000, outage });
  }

  private grow(): void {
    const leases = new BigInt64Array(this.leases.length * 2);
    leases.set(this.leases);
    this.leases = leases;
    const observed = new Float64Array(this.observed.length * 2);
    observed.set(this.observed);
    this.observed = observed;
    const modRevisions = new Float64Array(this.modRevisions.length * 2);
    modRevisions.set(this.modRevisions);
    this.modRevisions = modRevisions;
    const positions = new Int32Array(this.positions.length * 2);
    positions.set(this.positions);
    this.positions = positions;
  }

  private pruneDeleted(now: number): void {
    const kept: Array<[string, DeletedEntry]> = [];
    for (const [key, entry] of this.deleted) {
      if (now - entry.deletedAt <= DELETED_KEEP_MS) break;
      this.deleted.delete(key);
      // Still renewed here (e.g. re-grants rate-limited through a long outage): its value stays.
      if (this.options.retain?.(key)) kept.push([key, { ...entry, deletedAt: now, outage: false }]);
    }
    for (const [key, entry] of kept) this.deleted.set(key, entry);
  }
}

interface DeletedEntry {
  value: string;
  leaseId: string;
  deletedAt: number;
  ttlMs: number;
  outage: boolean;
}

/** etcd's lease id (int64, decimal) as stored; anything else counts as no lease. */
function toLease(leaseId: string): bigint {
  try {
    return BigInt(leaseId);
  } catch {
    return 0n;
  }
}
