/**
 * Decides which leases to renew, and when; runs in the lease engine's worker thread.
 *
 * A lease is renewed when a third of its TTL has passed since etcd last confirmed it AND its pod
 * heartbeated since (read from shared memory, see LeaseSlots), so etcd's renewal traffic is bounded by
 * instances / (TTL/3) whatever the heartbeat rate, and a silent pod's lease simply runs out in etcd.
 *
 * Cost: slots sit in a timing wheel keyed by when they next need a look (due time, resend check,
 * re-check of a lease whose pod has not heartbeated yet). A pass only touches the buckets whose time
 * has come, so it costs O(slots due now), not O(slots tracked): the old full scan over 100k leases
 * every 500 ms was measurable CPU on the thread that also served HTTP.
 *
 * No I/O and no clock of its own: renewals go out through a `RenewalTransport`, answers come in through
 * `onAnswer()`, time is passed in. Unit tests drive it with a fake clock.
 */
export interface RenewalTransport {
  /** Writes one renewal; returns the stream index used, or -1 when no stream is open. */
  send(leaseId: string, preferredStream: number): number;
  readonly streamCount: number;
}

export interface RenewalSchedulerHooks {
  /** When the pod of `slot` last heartbeated (epoch ms), from shared memory. */
  heartbeatAt(slot: number): number;
  /** etcd confirmed the lease of `slot`; `at` is when the renewal was sent. */
  renewed?(slot: number, at: number): void;
  /** etcd answered TTL 0: the lease of `slot` is gone. The slot is parked until replace(). */
  lost?(slot: number, leaseId: string, at: number): void;
  /** The pod of `slot` was silent for two TTLs; the slot is parked (its owner forgets or re-tracks it). */
  silent?(slot: number): void;
  /** etcd confirmed a renewal THIS scheduler sent (what a shared ledger records). */
  confirmed?(slot: number, leaseId: string, at: number, ttlMs: number): void;
}

/** A due renewal waiting for the cluster's verdict (see takeClaims). */
export interface RenewalClaim {
  slot: number;
  leaseId: string;
  /** A third of the lease's TTL: renewed elsewhere within it means "not due". */
  thirdMs: number;
}

export interface RenewalSchedulerOptions {
  /** Pass period and bucket width of the wheel, ms. */
  tickMs: number;
  /** Renewals written and not yet answered, over all streams; beyond it due renewals wait (backlog). */
  maxInFlight: number;
  /**
   * Replicas coordinate through a shared ledger: due renewals are not sent by the pass but handed out
   * by takeClaims(), and sent (sendClaimed) or skipped (renewedElsewhere) once the ledger answered.
   */
  coordinated?: boolean;
}

export interface RenewalStats {
  sent: number;
  confirmed: number;
  lost: number;
  /** Due renewals not sent because the ledger showed another replica had just renewed the lease. */
  deduplicated: number;
  /** Leases due (heartbeated, a third of the TTL passed) and not confirmed yet. */
  backlog: number;
  /** Since when the oldest unconfirmed due lease has been due, epoch ms; 0 = none. */
  oldestDueSince: number;
  inFlight: number;
  tracked: number;
}

const PARKED = -1;

export class RenewalScheduler {
  // Struct of arrays indexed by slot: a million tracked leases stay a few tens of MB.
  private readonly leaseIds: Array<string | undefined> = [];
  private readonly ttlMs: number[] = [];
  private readonly renewedAt: number[] = [];
  private readonly sentAt: number[] = [];
  private readonly sentOn: number[] = [];
  private readonly bucketOf: number[] = [];
  private readonly dueSince: number[] = [];
  private readonly slotByLease = new Map<string, number>();
  private readonly wheel = new Map<number, number[]>();
  private readonly inFlight: Array<Set<number>>;
  private nextBucket = -1;
  private trackedCount = 0;
  // FIFO of (slot, dueSince), appended as passes find leases due (passes move forward in time): its
  // head, once entries confirmed since are skipped, is the oldest unconfirmed one, to a tick.
  private readonly backlogSlots: number[] = [];
  private readonly backlogSince: number[] = [];
  private backlogHead = 0;
  private backlogCount = 0;
  private counters = { sent: 0, confirmed: 0, lost: 0, deduplicated: 0 };
  private readonly claiming: boolean[] = [];
  /**
   * Self-preservation (see SelfPreservation): while set, leases of silent pods are renewed as if their
   * pods had heartbeated, and no silent pod is reported for dropping.
   */
  preserving = false;
  private claims: RenewalClaim[] = [];

  constructor(
    private readonly transport: RenewalTransport,
    private readonly hooks: RenewalSchedulerHooks,
    private readonly options: RenewalSchedulerOptions,
  ) {
    this.inFlight = Array.from({ length: Math.max(1, transport.streamCount) }, () => new Set<number>());
  }

  /**
   * Starts (or restarts) renewing `slot` under `leaseId`. `renewedAt` is when etcd last set the lease's
   * TTL: the grant time for a fresh lease; for a lease learned from etcd, `now - ttl` makes it due at once.
   */
  track(slot: number, leaseId: string, ttlMs: number, renewedAt: number): void {
    if (this.leaseIds[slot] !== undefined) this.untrack(slot);
    this.leaseIds[slot] = leaseId;
    this.ttlMs[slot] = ttlMs;
    this.renewedAt[slot] = renewedAt;
    this.sentAt[slot] = 0;
    this.dueSince[slot] = 0;
    this.slotByLease.set(leaseId, slot);
    this.trackedCount++;
    this.scheduleAt(slot, renewedAt + ttlMs / 3);
  }

  untrack(slot: number): void {
    const leaseId = this.leaseIds[slot];
    if (leaseId === undefined) return;
    if (this.slotByLease.get(leaseId) === slot) this.slotByLease.delete(leaseId);
    this.clearInFlight(slot);
    this.clearDue(slot);
    this.leaseIds[slot] = undefined;
    this.claiming[slot] = false;
    this.bucketOf[slot] = PARKED;
    this.trackedCount--;
  }

  /** The slot's instance lives on under a new lease (re-granted, or adopted from another writer). */
  replace(slot: number, leaseId: string, renewedAt: number): void {
    const old = this.leaseIds[slot];
    if (old === undefined) return;
    if (this.slotByLease.get(old) === slot) this.slotByLease.delete(old);
    this.clearInFlight(slot);
    this.clearDue(slot);
    this.leaseIds[slot] = leaseId;
    this.slotByLease.set(leaseId, slot);
    this.renewedAt[slot] = renewedAt;
    this.scheduleAt(slot, renewedAt + this.ttlMs[slot] / 3);
  }

  isTracked(slot: number): boolean {
    return this.leaseIds[slot] !== undefined;
  }

  /** One pass: looks at the slots whose time has come and sends the renewals that are due. */
  renewDueLeases(now: number): number {
    const last = Math.floor(now / this.options.tickMs);
    // The first pass also picks up what was scheduled before it (e.g. leases learned as already due).
    const first = this.nextBucket >= 0 ? this.nextBucket : Math.min(last, ...this.wheel.keys());
    // Anything scheduled while this pass runs lands in a later pass.
    this.nextBucket = last + 1;
    const sentBefore = this.counters.sent;
    for (let bucket = first; bucket <= last; bucket++) {
      const slots = this.wheel.get(bucket);
      if (!slots) continue;
      this.wheel.delete(bucket);
      for (const slot of slots) {
        // A slot rescheduled since it was put here is stale in this bucket: skip it.
        if (this.bucketOf[slot] === bucket) this.consider(slot, now);
      }
    }
    return this.counters.sent - sentBefore;
  }

  /** etcd's answer on a keepalive stream: TTL > 0 renewed, TTL 0 the lease no longer exists. */
  onAnswer(leaseId: string, ttlSeconds: number, now: number): void {
    const slot = this.slotByLease.get(leaseId);
    if (slot === undefined) return;
    const sentAt = this.sentAt[slot];
    this.clearInFlight(slot);
    if (ttlSeconds > 0) {
      this.counters.confirmed++;
      // An answer with nothing in flight repeats an earlier one (a resend raced its answer): the
      // renewal time is not known, so the lease keeps the older, safer one.
      if (!sentAt) return;
      this.clearDue(slot);
      this.renewedAt[slot] = sentAt;
      this.hooks.renewed?.(slot, sentAt);
      this.hooks.confirmed?.(slot, leaseId, sentAt, this.ttlMs[slot]);
      this.scheduleAt(slot, sentAt + this.ttlMs[slot] / 3);
      return;
    }
    this.counters.lost++;
    this.clearDue(slot);
    this.bucketOf[slot] = PARKED;
    this.hooks.lost?.(slot, leaseId, now);
  }

  /** A stream broke: renewals in flight on it are lost, so they are sent again on the next pass. */
  onStreamReset(stream: number, now: number): void {
    const slots = this.inFlight[stream];
    if (!slots) return;
    for (const slot of slots) {
      this.sentAt[slot] = 0;
      this.scheduleAt(slot, now);
    }
    slots.clear();
  }

  /** Age of the oldest renewal written on `stream` and not answered yet, ms; 0 = none in flight. */
  oldestInFlightMs(stream: number, now: number): number {
    let oldest = 0;
    for (const slot of this.inFlight[stream] ?? []) {
      const age = now - this.sentAt[slot];
      if (age > oldest) oldest = age;
    }
    return oldest;
  }

  /** The tracked pods that have not heartbeated here for half their TTL (1.5 missed heartbeats at TTL/3). O(tracked). */
  silentLeases(now: number): { tracked: number; silent: Array<{ leaseId: string; ttlMs: number }> } {
    const silent: Array<{ leaseId: string; ttlMs: number }> = [];
    for (let slot = 0; slot < this.leaseIds.length; slot++) {
      const leaseId = this.leaseIds[slot];
      if (leaseId !== undefined && now - this.hooks.heartbeatAt(slot) > this.ttlMs[slot] / 2) silent.push({ leaseId, ttlMs: this.ttlMs[slot] });
    }
    return { tracked: this.trackedCount, silent };
  }

  stats(): RenewalStats {
    while (this.backlogHead < this.backlogSlots.length && this.dueSince[this.backlogSlots[this.backlogHead]] !== this.backlogSince[this.backlogHead]) {
      this.backlogHead++;
    }
    if (this.backlogHead > 4096 && this.backlogHead * 2 > this.backlogSlots.length) {
      this.backlogSlots.splice(0, this.backlogHead);
      this.backlogSince.splice(0, this.backlogHead);
      this.backlogHead = 0;
    }
    let inFlight = 0;
    for (const set of this.inFlight) inFlight += set.size;
    return {
      ...this.counters,
      backlog: this.backlogCount,
      oldestDueSince: this.backlogHead < this.backlogSlots.length ? this.backlogSince[this.backlogHead] : 0,
      inFlight,
      tracked: this.trackedCount,
    };
  }

  private consider(slot: number, now: number): void {
    const ttl = this.ttlMs[slot];
    const third = ttl / 3;
    if (this.sentAt[slot]) {
      // Unanswered: send again once a third of the TTL has passed (an answer may have been lost).
      if (now - this.sentAt[slot] < third) return this.scheduleAt(slot, this.sentAt[slot] + third);
      this.clearInFlight(slot);
    }
    const renewedAt = this.renewedAt[slot];
    if (now - renewedAt < third) return this.scheduleAt(slot, renewedAt + third);
    const heartbeatAt = this.hooks.heartbeatAt(slot);
    if (heartbeatAt <= renewedAt && !this.preserving) {
      if (now - heartbeatAt > 2 * ttl) {
        this.bucketOf[slot] = PARKED;
        this.hooks.silent?.(slot);
        return;
      }
      // Not heartbeated since the last renewal: look again soon, a late heartbeat must still make it.
      return this.scheduleAt(slot, now + Math.min(1_000, Math.max(this.options.tickMs, ttl / 10)));
    }
    if (!this.dueSince[slot]) this.markDue(slot, now);
    if (this.options.coordinated) {
      if (!this.claiming[slot]) {
        this.claiming[slot] = true;
        this.claims.push({ slot, leaseId: this.leaseIds[slot]!, thirdMs: third });
      }
      // If no verdict comes (the ledger hangs), look again: sendClaimed() is idempotent.
      return this.scheduleAt(slot, now + Math.min(third / 2, 2_000));
    }
    this.send(slot, now);
  }

  /** Due renewals collected by the last passes, for the ledger; each is answered by one of the two calls below. */
  takeClaims(): RenewalClaim[] {
    const claims = this.claims;
    this.claims = [];
    return claims;
  }

  /** The ledger says: renew it (nobody renewed it lately and the claim is ours), or it cannot be asked. */
  sendClaimed(slot: number, now: number): void {
    if (!this.claiming[slot]) return;
    this.claiming[slot] = false;
    if (this.leaseIds[slot] === undefined || this.sentAt[slot]) return;
    this.send(slot, now);
  }

  /** The ledger says: another replica renewed it at `at` (etcd confirmed); this one waits for the next period. */
  renewedElsewhere(slot: number, at: number): void {
    if (!this.claiming[slot]) return;
    this.claiming[slot] = false;
    if (this.leaseIds[slot] === undefined) return;
    this.counters.deduplicated++;
    if (at > this.renewedAt[slot]) {
      this.renewedAt[slot] = at;
      this.hooks.renewed?.(slot, at);
    }
    this.clearDue(slot);
    this.scheduleAt(slot, this.renewedAt[slot] + this.ttlMs[slot] / 3);
  }

  /** Another replica holds the claim right now: look again shortly (it records its renewal, or its claim expires). */
  claimedElsewhere(slot: number, now: number): void {
    if (!this.claiming[slot]) return;
    this.claiming[slot] = false;
    if (this.leaseIds[slot] === undefined) return;
    this.scheduleAt(slot, now + Math.min(this.ttlMs[slot] / 6, 1_000));
  }

  private send(slot: number, now: number): void {
    const third = this.ttlMs[slot] / 3;
    if (this.inFlightCount() >= this.options.maxInFlight) return this.scheduleAt(slot, now);
    const stream = this.transport.send(this.leaseIds[slot]!, slot % Math.max(1, this.transport.streamCount));
    if (stream < 0) return this.scheduleAt(slot, now); // no stream open: retry next pass
    this.sentAt[slot] = now;
    this.sentOn[slot] = stream;
    this.inFlight[stream]?.add(slot);
    this.counters.sent++;
    this.scheduleAt(slot, now + third);
  }

  private scheduleAt(slot: number, at: number): void {
    let bucket = Math.floor(at / this.options.tickMs);
    if (this.nextBucket >= 0 && bucket < this.nextBucket) bucket = this.nextBucket;
    this.bucketOf[slot] = bucket;
    const slots = this.wheel.get(bucket);
    if (slots) slots.push(slot);
    else this.wheel.set(bucket, [slot]);
  }

  private inFlightCount(): number {
    let n = 0;
    for (const set of this.inFlight) n += set.size;
    return n;
  }

  private clearInFlight(slot: number): void {
    if (!this.sentAt[slot]) return;
    this.inFlight[this.sentOn[slot]]?.delete(slot);
    this.sentAt[slot] = 0;
  }

  private markDue(slot: number, since: number): void {
    this.dueSince[slot] = since;
    this.backlogCount++;
    this.backlogSlots.push(slot);
    this.backlogSince.push(since);
  }

  private clearDue(slot: number): void {
    if (!this.dueSince[slot]) return;
    this.dueSince[slot] = 0;
    this.backlogCount--;
  }
}
