import { LeaseSlots } from './lease-slots';

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

export interface TrackedLease {
  readonly key: string;
  readonly slot: number;
  leaseId: string;
  /** `leaseId` as etcd's int64, compared with the lost lease the worker reports. */
  lease: bigint;
  readonly ttlMs: number;
  /** Opaque here: what a re-grant writes back (the instance's etcd value). */
  payload: string;
}

export type HeartbeatOutcome = 'accepted' | 'unknown' | 'lease-lost';

export interface LeaseTableHooks {
  /** A pod heartbeated after its lease was found gone: the owner re-grants and re-writes it. */
  leaseLost?(lease: TrackedLease): void;
  /** A silent instance was dropped from the table (its lease has run out in etcd by then). */
  silentInstanceDropped?(lease: TrackedLease): void;
}

/**
 * The instances this replica renews, on the HTTP thread: instance key -> lease, and one shared-memory
 * slot per instance for heartbeat marks (see LeaseSlots).
 *
 * A heartbeat never waits on etcd and never sends a message: it writes a timestamp into the slot.
 * Renewals are decided by the RenewalScheduler on the other side of the channel, which reads those
 * timestamps. What etcd answered comes back through the same slot: a lease found gone (TTL 0) is seen
 * by the next heartbeat, which asks the owner to re-grant it.
 */
export class LeaseTable {
  private readonly byKey = new Map<string, TrackedLease>();
  private readonly bySlot: Array<TrackedLease | undefined> = [];
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

  get(key: string): TrackedLease | undefined {
    return this.byKey.get(key);
  }

  values(): IterableIterator<TrackedLease> {
    return this.byKey.values();
  }

  /**
   * Starts (or restarts) renewing `key` under `leaseId`. `renewedAt` is when etcd last set the lease's
   * TTL: the grant time for a fresh lease; unknown for a lease learned from etcd, where passing
   * `now - ttl` makes it due at the next pass.
   */
  track(key: string, leaseId: string, ttlSeconds: number, payload: string, now: number, renewedAt = now): TrackedLease {
    const previous = this.byKey.get(key);
    const slot = previous?.slot ?? this.allocateSlot();
    const lease: TrackedLease = { key, slot, leaseId, lease: BigInt(leaseId), ttlMs: ttlSeconds * 1000, payload };
    this.byKey.set(key, lease);
    this.bySlot[slot] = lease;
    this.slots.markHeartbeat(slot, now);
    this.slots.setRenewedAt(slot, renewedAt);
    this.channel.track(slot, leaseId, lease.ttlMs, renewedAt);
    return lease;
  }

  /** Marks the pod alive. Never waits on etcd. */
  heartbeat(key: string, now: number): HeartbeatOutcome {
    const lease = this.byKey.get(key);
    if (!lease) return 'unknown';
    if (now - this.slots.heartbeatAt(lease.slot) > lease.ttlMs) {
      // Silent for longer than its TTL: the registration expired for good here. It is "unknown" exactly
      // as on a replica that never saw it (etcd decides: 404, or adopt the key if it is still there).
      this.forget(key);
      return 'unknown';
    }
    this.slots.markHeartbeat(lease.slot, now);
    if (this.isLost(lease)) {
      // Only a heartbeat *after* etcd said "gone" re-grants: a pod that deregistered through another
      // replica stops heartbeating, and must not be resurrected by a renewal that raced with it.
      if (now > this.slots.lostAt(lease.slot)) this.hooks.leaseLost?.(lease);
      return 'lease-lost';
    }
    return 'accepted';
  }

  /** Whether etcd answered TTL 0 for the lease this instance holds now. */
  isLost(lease: TrackedLease): boolean {
    return this.slots.lostLease(lease.slot) === lease.lease;
  }

  /** Stops renewing; etcd's copy is left alone (the caller revokes when it means to). */
  forget(key: string): TrackedLease | undefined {
    const lease = this.byKey.get(key);
    if (!lease) return undefined;
    this.byKey.delete(key);
    this.bySlot[lease.slot] = undefined;
    this.channel.untrack(lease.slot);
    return lease;
  }

  /** A re-grant succeeded (or another writer's lease was adopted): the instance lives on under `leaseId`. */
  replaceLease(key: string, leaseId: string, renewedAt: number): void {
    const lease = this.byKey.get(key);
    if (!lease) return;
    lease.leaseId = leaseId;
    lease.lease = BigInt(leaseId);
    this.slots.setRenewedAt(lease.slot, renewedAt);
    this.channel.replace(lease.slot, leaseId, renewedAt);
  }

  /** The renewal side is done with these slots: they may take new instances. */
  onReleased(slots: readonly number[]): void {
    for (const slot of slots) if (!this.bySlot[slot]) this.freeSlots.push(slot);
  }

  /**
   * The renewal side found these pods silent for two TTLs and parked them. Forget those still silent
   * (etcd has expired their leases by now); a pod that heartbeated meanwhile is tracked again.
   */
  onSilent(slots: readonly number[], now: number): void {
    for (const slot of slots) {
      const lease = this.bySlot[slot];
      if (!lease) continue;
      if (now - this.slots.heartbeatAt(slot) > 2 * lease.ttlMs) {
        this.forget(lease.key);
        this.hooks.silentInstanceDropped?.(lease);
      } else {
        this.channel.track(slot, lease.leaseId, lease.ttlMs, this.slots.renewedAt(slot));
      }
    }
  }

  /** Tells a new renewal side (e.g. a restarted worker) everything: segments, then every lease. */
  replayTo(channel: RenewalChannel): void {
    for (const buffer of this.slots.buffers) channel.addSegment(buffer);
    for (const lease of this.byKey.values()) channel.track(lease.slot, lease.leaseId, lease.ttlMs, this.slots.renewedAt(lease.slot));
  }

  private allocateSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.nextSlot >= this.slots.capacity) this.channel.addSegment(this.slots.grow());
    return this.nextSlot++;
  }
}
