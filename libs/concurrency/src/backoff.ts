/**
 * THE back-off of the gateway: every reconnect, reopen and restart waits for a delay from here
 * (etcd keepalive streams and watch, the lease-grant session, the worker restarts, Redis reconnects).
 * Each caller states its own policy where it builds one; the formula is written once.
 *
 * The delay before retry `attempt` (0 = the first retry after a success) doubles from `minMs` up to
 * `maxMs`, and a fraction `jitter` of it is random: it lies in [(1 - jitter) * ceiling, ceiling].
 * Jitter keeps replicas that lost etcd or Redis together from reconnecting in step; it only ever
 * shortens a delay, so `maxMs` is a true bound (e.g. "a failover is noticed within one cap").
 */
export interface BackoffPolicy {
  /** The first delay (before jitter). */
  minMs: number;
  /** The cap the doubling stops at (before jitter). */
  maxMs: number;
  /** Fraction of each delay that is random, 0..1: 0 = none, 0.5 = between half and all of it. */
  jitter: number;
}

/**
 * The delay before retry `attempt` (0-based) under `policy`, in whole ms. `random` returns [0, 1)
 * like Math.random, which it defaults to; tests pass their own.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  // Past 2^52 the doubling changes nothing but could reach Infinity (and 0 * Infinity = NaN).
  const ceiling = Math.min(policy.maxMs, policy.minMs * 2 ** Math.min(Math.max(0, attempt), 52));
  return Math.round(ceiling * (1 - policy.jitter * random()));
}

/**
 * A back-off with its own count of failures: `next()` after each failure, `reset()` once the thing
 * retried works again (a stream answered, a worker reported ready), so the next outage starts from
 * `minMs`.
 */
export class Backoff {
  private failures = 0;

  constructor(
    readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** Failures since the last reset. */
  get attempts(): number {
    return this.failures;
  }

  /** The delay before the next attempt; counts one failure. */
  next(): number {
    return backoffDelay(this.policy, this.failures++, this.random);
  }

  reset(): void {
    this.failures = 0;
  }
}
