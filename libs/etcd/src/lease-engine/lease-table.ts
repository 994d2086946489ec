import { LeaseSlots, SEGMENT_SLOTS } from './lease-slots';

const SEGMENT_SHIFT = Math.log2(SEGMENT_SLOTS);
const SEGMENT_MASK = SEGMENT_SLOTS - 1;

/**
 * How the lease table tells the renewal side (the lease engine's worker, or a scheduler in the same
 * thread in unit tests) what to renew. Calls are cheap and may be batched; they arrive in order.
 */
export interface RenewalChannel {
  /** A new shared-memory segment; posted before any slot in it is tracked. */
  addSegment(buffer: SharedArrayBuffer): void;
  track(slot: number, leaseId: string, ttlMs: number, renewedAt: number): void;
  /** Stop renewing; the renewal side releases the slot (LeaseTable.onReleased) once it is done with it. */
  untrack(slot: number): void;
  replace(slot: number, leaseId: string, renewedAt: number): void;
}

/** One tracked instance, as the table answers it (a snapshot: the table itself keeps no objects per instance). */
export interface TrackedLease {
  readonly key: string;
  readonly slot: number;
  readonly leaseId: string;
  readonly ttlMs: number;
}

export type HeartbeatOutcome = 'accepted' | 'unknown' | 'lease-lost';

/**
 * Where the values of instances live (the InstanceDirectory): the table keeps none, so each value is
 * held once per replica, not once by the directory and again for re-grants.
 */
export interface InstanceValues {
  /**
   * `value` was just written to etcd under `leaseId` (registration, re-grant, adoption). Returns the
   * key as the store holds it, so that the table and the store share one string per instance.
   */
  written(key: string, value: string, leaseId: string, now: number): string;
  /**
   * The latest value of `key` this replica knows (writes through any replica, seen by the watch), also
   * after etcd deleted it with an expired lease: what a re-grant writes back. Undefined if unknown.
   */
  latest(key: string): string | undefined;
}

export interface LeaseTableHooks {
  /** A pod heartbeated after its lease was found gone: the owner re-grants and re-writes it. */
  leaseLost?(lease: TrackedLease): void;
  /** A silent instance was dropped from the table (its lease has run out in etcd by then). */
  silentInstanceDropped?(lease: TrackedLease): void;
  /** Where track() hands the values written; without it the table cannot tell what a re-grant writes. */
  values?: InstanceValues;
  /** The pod in this slot was heard (tracked or heartbeat): HeardSetPublisher.heard. Hot path. */
  heard?(slot: number): void;
}

/**
 * The instances this replica renews, on the HTTP thread: instance key -> lease, and one shared-memory
 * slot per instance for heartbeat marks (see LeaseSlots).
 *
 * A heartbeat never waits on etcd and never sends a message: it writes a timestamp into the slot.
 * Renewals are decided by the RenewalScheduler on the other side of the channel, which reads those
 * timestamps. What etcd answered comes back through the same slot: a lease found gone (TTL 0) is seen
 * by the next heartbeat, which asks the owner to re-grant it.
 *
 * Memory (100k instances per replica): per instance the table holds a Map entry (key -> slot), the
 * key string (shared with the InstanceDirectory, see InstanceValues.written) and 16 bytes in arrays
 * indexed by slot. No object per instance, no lease id string, no value: a re-grant reads the value
 * from `hooks.values`, which the watch keeps current (bench/results/memory.md).
 */
export class LeaseTable {
  private readonly byKey = new Map<string, number>();
  private readonly keys: Array<string | undefined> = [];
  /** Per slot: the lease as etcd's int64 (0n = free slot), and the TTL in ms; one segment per LeaseSlots segment. */
  private readonly leases: BigInt64Array[] = [];
  private readonly ttls: Int32Array[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;

  constructor(
    readonly slots: LeaseSlots,
    private readonly channel: RenewalChannel,
    private readonly hooks: LeaseTableHooks = {},
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  get(key: string): TrackedLease | undefined {
    const slot = this.byKey.get(key);
    return slot === undefined ? undefined : this.view(slot);
  }

  *values(): IterableIterator<TrackedLease> {
    for (const slot of this.byKey.values()) yield this.view(slot);
  }

  /**
   * Starts (or restarts) renewing `key` under `leaseId`; `value` is what was written to etcd with it,
   * handed to `hooks.values` (the table keeps no copy). `renewedAt` is when etcd last set the lease's
   * TTL: the grant time for a fresh lease; unknown for a lease learned from etcd, where passing
   * `now - ttl` makes it due at the next pass.
   */
  track(key: string, leaseId: string, ttlSeconds: number, value: string, now: number, renewedAt = now): TrackedLease {
    const shared = this.hooks.values?.written(key, value, leaseId, renewedAt) ?? key;
    let slot = this.byKey.get(shared);
    if (slot === undefined) {
      slot = this.allocateSlot();
      this.byKey.set(shared, slot);
      this.keys[slot] = shared;
    }
    const ttlMs = ttlSeconds * 1000;
    this.setLease(slot, leaseId);
    this.ttls[slot >>> SEGMENT_SHIFT][slot & SEGMENT_MASK] = ttlMs;
    this.slots.markHeartbeat(slot, now);
    this.slots.setRenewedAt(slot, renewedAt);
    this.channel.track(slot, leaseId, ttlMs, renewedAt);
    this.hooks.heard?.(slot);
    return this.view(slot);
  }

  /** The instance key in `slot` now (HeardSetPublisher resolves its marks with it). */
  keyOf(slot: number): string | undefined {
    return this.keys[slot];
  }

  /** Marks the pod alive. Never waits on etcd. */
  heartbeat(key: string, now: number): HeartbeatOutcome {
    const slot = this.byKey.get(key);
    if (slot === undefined) return 'unknown';
    if (now - this.slots.heartbeatAt(slot) > this.ttlOf(slot)) {
      // Silent for longer than its TTL: the registration expired for good here. It is "unknown" exactly
      // as on a replica that never saw it (etcd decides: 404, or adopt the key if it is still there).
      this.forget(key);
      return 'unknown';
    }
    this.slots.markHeartbeat(slot, now);
    this.hooks.heard?.(slot);
    if (this.isSlotLost(slot)) {
      // Only a heartbeat *after* etcd said "gone" re-grants: a pod that deregistered through another
      // replica stops heartbeating, and must not be resurrected by a renewal that raced with it.
      if (now > this.slots.lostAt(slot)) this.hooks.leaseLost?.(this.view(slot));
      return 'lease-lost';
    }
    return 'accepted';
  }

  /** Whether etcd answered TTL 0 for the lease this instance holds now. */
  isLost(lease: TrackedLease): boolean {
    return this.keys[lease.slot] === lease.key && this.isSlotLost(lease.slot);
  }

  /**
   * A write that keeps the instance's lease (a PATCH through this replica): the value store learns it
   * at once, so a re-grant before the watch brings it back writes the new value.
   */
  written(key: string, value: string, leaseId: string, now: number): void {
    this.hooks.values?.written(key, value, leaseId, now);
  }

  /** What a re-grant of `key` writes: the latest value the owner's value store knows. */
  latestValue(key: string): string | undefined {
    return this.hooks.values?.latest(key);
  }

  /** Stops renewing; etcd's copy is left alone (the caller revokes when it means to). */
  forget(key: string): TrackedLease | undefined {
    const slot = this.byKey.get(key);
    if (slot === undefined) return undefined;
    const lease = this.view(slot);
    this.byKey.delete(key);
    this.keys[slot] = undefined;
    this.leases[slot >>> SEGMENT_SHIFT][slot & SEGMENT_MASK] = 0n;
    this.channel.untrack(slot);
    return lease;
  }

  /** A re-grant succeeded (or another writer's lease was adopted): the instance lives on under `leaseId`. */
  replaceLease(key: string, leaseId: string, renewedAt: number): void {
    const slot = this.byKey.get(key);
    if (slot === undefined) return;
    this.setLease(slot, leaseId);
    this.slots.setRenewedAt(slot, renewedAt);
    this.channel.replace(slot, leaseId, renewedAt);
  }

  /** The renewal side is done with these slots: they may take new instances. */
  onReleased(slots: readonly number[]): void {
    for (const slot of slots) if (this.keys[slot] === undefined) this.freeSlots.push(slot);
  }

  /**
   * The renewal side found these pods silent for two TTLs and parked them. Forget those still silent
   * (etcd has expired their leases by now); a pod that heartbeated meanwhile is tracked again.
   */
  onSilent(slots: readonly number[], now: number): void {
    for (const slot of slots) {
      const key = this.keys[slot];
      if (key === undefined) continue;
      const ttlMs = this.ttlOf(slot);
      if (now - this.slots.heartbeatAt(slot) > 2 * ttlMs) {
        const lease = this.forget(key)!;
        this.hooks.silentInstanceDropped?.(lease);
      } else {
        this.channel.track(slot, this.leaseIdOf(slot), ttlMs, this.slots.renewedAt(slot));
      }
    }
  }

  /** Tells a new renewal side (e.g. a restarted worker) everything: segments, then every lease. */
  replayTo(channel: RenewalChannel): void {
    for (const buffer of this.slots.buffers) channel.addSegment(buffer);
    for (const slot of this.byKey.values()) channel.track(slot, this.leaseIdOf(slot), this.ttlOf(slot), this.slots.renewedAt(slot));
  }

  private view(slot: number): TrackedLease {
    return { key: this.keys[slot]!, slot, leaseId: this.leaseIdOf(slot), ttlMs: this.ttlOf(slot) };
  }

  private isSlotLost(slot: number): boolean {
    const lost = this.slots.lostLease(slot);
    return lost !== 0n && lost === this.leases[slot >>> SEGMENT_SHIFT][slot & SEGMENT_MASK];
  }

  private leaseIdOf(slot: number): string {
    return String(this.leases[slot >>> SEGMENT_SHIFT][slot & SEGMENT_MASK]);
  }

  private ttlOf(slot: number): number {
    return this.ttls[slot >>> SEGMENT_SHIFT][slot & SEGMENT_MASK];
  }

  private setLease(slot: number, leaseId: string): void {
    this.leases[slot >>> SEGMENT_SHIFT][slot & SEGMENT_MASK] = BigInt(leaseId);
  }

  private allocateSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.nextSlot >= this.slots.capacity) this.channel.addSegment(this.slots.grow());
    while (this.leases.length < this.slots.capacity / SEGMENT_SLOTS) {
      this.leases.push(new BigInt64Array(SEGMENT_SLOTS));
      this.ttls.push(new Int32Array(SEGMENT_SLOTS));
    }
    return this.nextSlot++;
  }
}
