import { KeyLayout } from '@app/registry';
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
  private synced = false;

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

  apply(events: readonly RegistryEvent[], now = Date.now()): void {
    for (const event of events) {
      const key = this.layout.instanceKey(event.service, event.id);
      if (event.type === 'put' && event.value !== undefined && event.leaseId !== undefined) {
        // A put that keeps the lease (a PATCH, a re-registration with the same TTL) says nothing new
        // about when the lease was renewed: keep the earlier observation.
        const previous = this.byKey.get(key);
        const observedAt = previous && previous.leaseId === event.leaseId ? previous.observedAt : now;
        this.byKey.set(key, { leaseId: event.leaseId, value: event.value, observedAt });
      }
      else this.byKey.delete(key);
    }
  }
}
