/**
 * The lease table of one gateway replica and the renewal scheduler over it.
 *
 * Pod heartbeats never touch etcd: `heartbeat()` marks an instance alive in memory. `renewDueLeases()`
 * sends a keepalive for a lease only when a third of its TTL has passed since the last renewal *and*
 * the pod heartbeated since, so etcd's renewal traffic is bounded by instances / (TTL / 3) whatever the
 * pods' heartbeat rate, and a silent pod's lease simply runs out in etcd.
 *
 * The class does no I/O: renewals go out through a `RenewalTransport` (the shared LeaseKeepAlive
 * streams) and answers come back through `onRenewalAnswer()`. Time is passed in, so tests drive it.
 */
export interface RenewalTransport {
  /** Writes one renewal; false when no stream is open (the lease stays due and is retried). */
  send(leaseId: string, preferredStream: number): boolean;
  readonly streamCount: number;
}

export interface TrackedLease {
  readonly key: string;
  leaseId: string;
  readonly ttlMs: number;
  /** Opaque to the multiplexer: what a re-grant writes back (the instance's etcd value). */
  payload: string;
  readonly stream: number;
  /** When etcd last confirmed (or granted) the lease, measured at the time the renewal was sent. */
  renewedAt: number;
  heartbeatAt: number;
  /** When the renewal in flight was sent; 0 when none is. */
  sentAt: number;
  /** etcd answered TTL 0: the lease is gone. Set until a re-grant replaces it. */
  lostAt: number;
}

export type HeartbeatOutcome = 'accepted' | 'unknown' | 'lease-lost';

export interface LeaseMultiplexerHooks {
  /** A pod heartbeated after its lease was found gone: the owner re-grants and re-writes it. */
  leaseLost?(lease: TrackedLease): void;
  renewalsSent?(count: number): void;
  /** A silent instance was dropped from the table (its lease has run out in etcd by then). */
  silentInstanceDropped?(lease: TrackedLease): void;
}

export class LeaseMultiplexer {
  private readonly byKey = new Map<string, TrackedLease>();
  private readonly byLeaseId = new Map<string, TrackedLease>();
  private nextStream = 0;

  constructor(
    private readonly transport: RenewalTransport,
    private readonly hooks: LeaseMultiplexerHooks = {},
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): TrackedLease | undefined {
    return this.byKey.get(key);
  }

  /**
   * Starts (or restarts) renewing `key` under `leaseId`. `renewedAt` is when etcd last set the lease's
   * TTL: the grant time for a fresh lease; unknown for a lease learned from etcd, where passing
   * `now - ttl` makes it due at the next pass.
   */
  track(key: string, leaseId: string, ttlSeconds: number, payload: string, now: number, renewedAt = now): TrackedLease {
    const previous = this.byKey.get(key);
    if (previous) this.byLeaseId.delete(previous.leaseId);
    const lease: TrackedLease = {
      key,
      leaseId,
      ttlMs: ttlSeconds * 1000,
      payload,
      stream: previous?.stream ?? this.nextStream++ % Math.max(1, this.transport.streamCount),
      renewedAt,
      heartbeatAt: now,
      sentAt: 0,
      lostAt: 0,
    };
    this.byKey.set(key, lease);
    this.byLeaseId.set(leaseId, lease);
    return lease;
  }

  /** Marks the pod alive. Never waits on etcd. */
  heartbeat(key: string, now: number): HeartbeatOutcome {
    const lease = this.byKey.get(key);
    if (!lease) return 'unknown';
    if (now - lease.heartbeatAt > lease.ttlMs) {
      // The pod was silent for longer than its TTL: its registration expired for good. It is
      // "unknown" here exactly as on a replica that never saw it (etcd decides: 404 or adopt).
      this.forget(key);
      return 'unknown';
    }
    lease.heartbeatAt = now;
    if (lease.lostAt) {
      // Only a heartbeat *after* etcd said "gone" re-grants: a pod that deregistered through another
      // replica stops heartbeating, and must not be resurrected by a renewal that raced with it.
      if (now > lease.lostAt) this.hooks.leaseLost?.(lease);
      return 'lease-lost';
    }
    return 'accepted';
  }

  /** Stops renewing; etcd's copy is left alone (the caller revokes when it means to). */
  forget(key: string): TrackedLease | undefined {
    const lease = this.byKey.get(key);
    if (!lease) return undefined;
    this.byKey.delete(key);
    if (this.byLeaseId.get(lease.leaseId) === lease) this.byLeaseId.delete(lease.leaseId);
    return lease;
  }

  /** One pass of the scheduler: sends the due renewals, drops instances that went silent. */
  renewDueLeases(now: number): number {
    let sent = 0;
    for (const lease of this.byKey.values()) {
      if (now - lease.heartbeatAt > 2 * lease.ttlMs && !lease.sentAt) {
        // Silent for two TTLs: etcd has expired the lease (or another replica renews it, and will
        // learn it again on the next heartbeat it takes). Keeps the table bounded by live pods.
        this.forget(lease.key);
        this.hooks.silentInstanceDropped?.(lease);
        continue;
      }
      if (lease.lostAt || !this.isDue(lease, now)) continue;
      if (!this.transport.send(lease.leaseId, lease.stream)) break;
      lease.sentAt = now;
      sent++;
    }
    if (sent) this.hooks.renewalsSent?.(sent);
    return sent;
  }

  /** etcd's answer on a keepalive stream: TTL > 0 renewed, TTL 0 the lease no longer exists. */
  onRenewalAnswer(leaseId: string, ttlSeconds: number, now: number): void {
    const lease = this.byLeaseId.get(leaseId);
    if (!lease) return;
    if (ttlSeconds > 0) {
      lease.renewedAt = lease.sentAt || now;
      lease.lostAt = 0;
    } else if (!lease.lostAt) {
      lease.lostAt = now;
    }
    lease.sentAt = 0;
  }

  /** A stream broke: renewals in flight on it are lost, so they become due again. */
  onStreamReset(): void {
    for (const lease of this.byKey.values()) lease.sentAt = 0;
  }

  /** A re-grant succeeded: the instance lives on under a new lease. */
  replaceLease(key: string, leaseId: string, now: number): void {
    const lease = this.byKey.get(key);
    if (!lease) return;
    this.byLeaseId.delete(lease.leaseId);
    lease.leaseId = leaseId;
    lease.renewedAt = now;
    lease.sentAt = 0;
    lease.lostAt = 0;
    this.byLeaseId.set(leaseId, lease);
  }

  private isDue(lease: TrackedLease, now: number): boolean {
    const renewAfter = lease.ttlMs / 3;
    if (lease.sentAt) return now - lease.sentAt >= renewAfter; // unanswered: send again
    return lease.heartbeatAt > lease.renewedAt && now - lease.renewedAt >= renewAfter;
  }
}
