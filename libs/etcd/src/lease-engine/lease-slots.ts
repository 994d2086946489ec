/**
 * Per-instance state that the HTTP thread and the lease engine's worker thread share without messages.
 *
 * Why shared memory: a heartbeat must cost the worker nothing (no message per heartbeat, which at
 * 100k pods would be a message storm), and a busy HTTP thread must never delay renewals. So the HTTP
 * thread writes `heartbeatAt[slot]` and the worker reads it when a renewal is due; the worker writes
 * what etcd answered (`renewedAt`, and the lease it found gone) and the HTTP thread reads it on the next
 * heartbeat. Each field has exactly one writer thread; a reader may see a value one write late, which
 * every user tolerates (aligned 64-bit stores are not torn on the platforms Node runs on).
 *
 * Memory grows in segments of SEGMENT_SLOTS, each a SharedArrayBuffer posted to the worker once; a slot
 * costs 32 bytes (3.2 MB for 100k instances).
 */
export const SEGMENT_SLOTS = 1 << 16;
const SEGMENT_SHIFT = 16;
const SEGMENT_MASK = SEGMENT_SLOTS - 1;
/** Float64 heartbeatAt, Float64 renewedAt, Float64 lostAt, BigInt64 lostLease. */
const BYTES_PER_SLOT = 32;

export interface SlotSegmentViews {
  heartbeatAt: Float64Array;
  renewedAt: Float64Array;
  lostAt: Float64Array;
  lostLease: BigInt64Array;
}

function views(buffer: SharedArrayBuffer): SlotSegmentViews {
  const n = SEGMENT_SLOTS;
  return {
    heartbeatAt: new Float64Array(buffer, 0, n),
    renewedAt: new Float64Array(buffer, 8 * n, n),
    lostAt: new Float64Array(buffer, 16 * n, n),
    lostLease: new BigInt64Array(buffer, 24 * n, n),
  };
}

export class LeaseSlots {
  private readonly segments: SlotSegmentViews[] = [];
  readonly buffers: SharedArrayBuffer[] = [];

  constructor(buffers: readonly SharedArrayBuffer[] = []) {
    for (const buffer of buffers) this.adopt(buffer);
  }

  get capacity(): number {
    return this.segments.length * SEGMENT_SLOTS;
  }

  /** Adds one segment (HTTP thread); returns its buffer, to be posted to the worker before any slot in it is used. */
  grow(): SharedArrayBuffer {
    const buffer = new SharedArrayBuffer(SEGMENT_SLOTS * BYTES_PER_SLOT);
    this.adopt(buffer);
    return buffer;
  }

  /** Takes a segment the other thread allocated. */
  adopt(buffer: SharedArrayBuffer): void {
    this.buffers.push(buffer);
    this.segments.push(views(buffer));
  }

  heartbeatAt(slot: number): number {
    return this.segments[slot >>> SEGMENT_SHIFT].heartbeatAt[slot & SEGMENT_MASK];
  }

  markHeartbeat(slot: number, at: number): void {
    this.segments[slot >>> SEGMENT_SHIFT].heartbeatAt[slot & SEGMENT_MASK] = at;
  }

  /** When etcd last confirmed this slot's lease (time the renewal was sent); 0 = not since tracking. */
  renewedAt(slot: number): number {
    return this.segments[slot >>> SEGMENT_SHIFT].renewedAt[slot & SEGMENT_MASK];
  }

  setRenewedAt(slot: number, at: number): void {
    this.segments[slot >>> SEGMENT_SHIFT].renewedAt[slot & SEGMENT_MASK] = at;
  }

  /** The lease etcd answered TTL 0 for on this slot; 0n = none. */
  lostLease(slot: number): bigint {
    return this.segments[slot >>> SEGMENT_SHIFT].lostLease[slot & SEGMENT_MASK];
  }

  /** When etcd answered TTL 0 for `lostLease(slot)`, epoch ms. */
  lostAt(slot: number): number {
    return this.segments[slot >>> SEGMENT_SHIFT].lostAt[slot & SEGMENT_MASK];
  }

  markLost(slot: number, lease: bigint, at: number): void {
    const segment = this.segments[slot >>> SEGMENT_SHIFT];
    const i = slot & SEGMENT_MASK;
    segment.lostLease[i] = lease;
    segment.lostAt[i] = at;
  }

  /** Resets a slot for its next occupant (worker side, when it releases the slot). */
  clear(slot: number): void {
    const segment = this.segments[slot >>> SEGMENT_SHIFT];
    const i = slot & SEGMENT_MASK;
    segment.heartbeatAt[i] = 0;
    segment.renewedAt[i] = 0;
    segment.lostAt[i] = 0;
    segment.lostLease[i] = 0n;
  }
}

/**
 * Counters and gauges the worker publishes for metrics and readiness (one writer: the worker).
 * Counters only grow; the HTTP thread turns them into Prometheus counters by difference.
 */
export const ENGINE_STATS = {
  /** Renewal messages written to a stream. */
  sent: 0,
  /** Renewals etcd answered with TTL > 0. */
  confirmed: 1,
  /** Renewals etcd answered with TTL 0 (the lease is gone). */
  lost: 2,
  /** Leases due for renewal (heartbeated, a third of the TTL passed) and not yet confirmed. */
  backlog: 3,
  /** Epoch ms since when the oldest unconfirmed due renewal has been due; 0 = none. */
  oldestDueSince: 4,
  /** Streams open on a connected channel. */
  liveStreams: 5,
  /** Epoch ms of etcd's last answer on any stream; 0 = never. */
  lastAnswerAt: 6,
  /** Slots the worker schedules. */
  tracked: 7,
  /** Renewals written and not answered yet. */
  inFlight: 8,
  /** Duration of the last scheduler pass, ms. */
  lastPassMs: 9,
  /** Epoch ms of the last scheduler pass: a stuck worker shows as an old value. */
  lastPassAt: 10,
  /** Due renewals skipped because the shared ledger showed another replica had just renewed them. */
  deduplicated: 11,
  /** 1 while self-preservation holds the leases of silent pods, else 0. */
  selfPreservation: 12,
  /** Silent pods whose leases self-preservation keeps renewing. */
  preservedLeases: 13,
  /**
   * The highest etcd revision reported in keepalive answers. The streams leave a stalled member, so
   * this follows the cluster even while the watch's member lags (see RegistryWatch.confirmedAt).
   */
  revisionSeen: 14,
  /** The worker's renewal-ledger Redis client: 1 connected, 0 not (no ledger: never written). */
  ledgerRedisUp: 15,
} as const;
export const ENGINE_STATS_LENGTH = 16;
