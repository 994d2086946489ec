import { TokenBucket } from '@app/concurrency';

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * One token bucket per API token name, for registrations (each costs etcd a LeaseGrant and a Put).
 * Keys come from the token file, never from the request, so the map cannot grow with traffic.
 * A rate of 0 turns the limit off.
 */
export class RegistrationRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  take(tokenName: string): RateDecision {
    if (this.ratePerSecond <= 0) return { allowed: true };
    const now = this.now();
    let bucket = this.buckets.get(tokenName);
    if (!bucket) {
      bucket = new TokenBucket(this.ratePerSecond, this.burst, now);
      this.buckets.set(tokenName, bucket);
    }
    return bucket.tryTake(now) ? { allowed: true } : { allowed: false, retryAfterSeconds: bucket.secondsUntilNext() };
  }
}
