import { decodeRecord, KeyLayout } from '@app/registry';
import type { RegistryEvent } from './registry-watch';
import type { StoredInstance, StoredRange } from './registry-store';

/**
 * Every instance in the registry as this replica's watch knows it: key -> lease id and value. Built
 * from one paged read at start and kept current by the watch (every put event carries kv.lease), so a
 * heartbeat for an instance another replica registered costs no etcd call here, and a replica that
 * takes over the heartbeats of a dead one reads nothing from etcd.
 *
 * Only `current` answers are trusted: before the initial read, or while the watch is down, a missing
 * key may just be one the watch has not delivered yet, and the caller falls back to reading etcd.
 */
export class InstanceDirectory {
  private readonly byKey = new Map<string, { leaseId: string; value: string; observedAt: number }>();
  /** Instances deleted lately (insertion order = deletion order), with what they held: see recentlyDeleted(). */
  private readonly deleted = new Map<string, { value: string; deletedAt: number; ttlMs: number }>();
  private synced = false;
  private outageAftermathUntil = 0;

  constructor(private readonly layout: KeyLayout) {}

  get size(): number {
    return this.byKey.size;
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
    const entry = this.byKey.get(key);
    return entry && { key, value: entry.value, leaseId: entry.leaseId, modRevision: '0', observedAt: entry.observedAt };
  }

  /** Replaces everything with one consistent read (the watch resumes right after its revision). */
  replace(range: StoredRange): void {
    this.byKey.clear();
    for (const item of range.items) {
      if (this.layout.parseInstanceKey(item.key)) this.byKey.set(item.key, { leaseId: item.leaseId, value: item.value, observedAt: 0 });
    }
    this.synced = true;
  }

  /**
   * What a key held if it was deleted within its TTL: after an etcd outage every lease expired at once
   * and a pod's next heartbeat may land on any replica, not only the one that tracked it. Such a
   * heartbeat re-grants (exactly like a heartbeat after a TTL-0 answer), instead of a 404 that would
   * make the pod register again.
   */
  /**
   * The watch came back after etcd was unreachable: deletions delivered until `until` are likely
   * leases that expired because nobody could renew them, not pods that went silent. Only those are
   * remembered for recentlyDeleted(); in normal operation a pod silent past its TTL gets 404.
   */
  outageEndedAt(now: number, windowMs = 30_000): void {
    this.outageAftermathUntil = now + windowMs;
  }

  recentlyDeleted(key: string, now = Date.now()): { value: string } | undefined {
    const entry = this.deleted.get(key);
    return entry && now - entry.deletedAt <= entry.ttlMs ? { value: entry.value } : undefined;
  }

  apply(events: readonly RegistryEvent[], now = Date.now()): void {
    this.pruneDeleted(now);
    for (const event of events) {
      const key = this.layout.instanceKey(event.service, event.id);
      if (event.type === 'delete') {
        const gone = this.byKey.get(key);
        const record = gone && decodeRecord(gone.value);
        this.deleted.delete(key);
        if (gone && record && now <= this.outageAftermathUntil) this.deleted.set(key, { value: gone.value, deletedAt: now, ttlMs: record.ttl * 1000 });
        this.byKey.delete(key);
      } else if (event.value !== undefined && event.leaseId !== undefined) {
        this.deleted.delete(key);
        // A put that keeps the lease (a PATCH, a re-registration with the same TTL) says nothing new
        // about when the lease was renewed: keep the earlier observation.
        const previous = this.byKey.get(key);
        const observedAt = previous && previous.leaseId === event.leaseId ? previous.observedAt : now;
        this.byKey.set(key, { leaseId: event.leaseId, value: event.value, observedAt });
      }
    }
  }

  private pruneDeleted(now: number): void {
    // Longest TTL is 300 s: anything older is of no use, and the map stays bounded by deletions per 5 min.
    for (const [key, entry] of this.deleted) {
      if (now - entry.deletedAt <= 300_000) break;
      this.deleted.delete(key);
    }
  }
}
