import { RefreshBackoff } from './refresh-backoff';

describe('RefreshBackoff', () => {
  it('allows one attempt per window, doubling the window per consecutive failure up to max', () => {
    const backoff = new RefreshBackoff(1_000, 4_000, () => 0);
    expect(backoff.mayAttempt('svc', 0)).toBe(true);
    expect(backoff.failed('svc', 0)).toBe(1_000);
    expect(backoff.mayAttempt('svc', 999)).toBe(false);
    expect(backoff.mayAttempt('svc', 1_000)).toBe(true);
    expect(backoff.failed('svc', 1_000)).toBe(2_000);
    expect(backoff.failed('svc', 3_000)).toBe(4_000);
    expect(backoff.failed('svc', 7_000)).toBe(4_000);
    expect(backoff.mayAttempt('other', 7_000)).toBe(true);
  });

  it('closes on success and jitters within the cap', () => {
    const backoff = new RefreshBackoff(1_000, 1_100, () => 1);
    expect(backoff.failed('svc', 0)).toBe(1_100);
    backoff.succeeded('svc');
    expect(backoff.mayAttempt('svc', 1)).toBe(true);
  });

  it('forgets keys whose window ended long ago', () => {
    const backoff = new RefreshBackoff(1_000, 2_000, () => 0);
    backoff.failed('once', 0);
    backoff.sweep(2_500);
    expect(backoff.size).toBe(1);
    backoff.sweep(3_001);
    expect(backoff.size).toBe(0);
  });
});
