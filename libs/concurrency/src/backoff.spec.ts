import { Backoff, backoffDelay } from './backoff';

/** A random source that returns `values` in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

describe('backoffDelay', () => {
  const noJitter = { minMs: 100, maxMs: 2_000, jitter: 0 };

  it('doubles from the minimum and stops at the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(noJitter, attempt))).toEqual([100, 200, 400, 800, 1_600, 2_000, 2_000]);
  });

  it('stays at the cap for any number of attempts (no Infinity or NaN), also from a minimum of 0', () => {
    expect(backoffDelay(noJitter, 10_000)).toBe(2_000);
    expect(backoffDelay({ minMs: 0, maxMs: 50, jitter: 0 }, 10_000)).toBe(0);
  });

  it('treats a negative attempt as the first one', () => {
    expect(backoffDelay(noJitter, -1)).toBe(100);
  });

  it('draws a jittered delay between (1 - jitter) and all of the ceiling, never above it', () => {
    const policy = { minMs: 1_000, maxMs: 1_000, jitter: 0.5 };
    expect(backoffDelay(policy, 0, () => 0)).toBe(1_000);
    expect(backoffDelay(policy, 0, () => 0.5)).toBe(750);
    expect(backoffDelay(policy, 0, () => 0.999_999)).toBe(500);
    expect(backoffDelay({ ...policy, jitter: 0.2 }, 0, () => 0.999_999)).toBe(800);
  });

  it('rounds to whole milliseconds', () => {
    expect(backoffDelay({ minMs: 100, maxMs: 100, jitter: 0.5 }, 0, () => 1 / 3)).toBe(83);
  });
});

describe('Backoff', () => {
  it('grows with each failure and starts again from the minimum after a reset', () => {
    const backoff = new Backoff({ minMs: 100, maxMs: 500, jitter: 0 });
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([100, 200, 400, 500]);
    expect(backoff.attempts).toBe(4);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(100);
  });

  it('applies jitter from the random source it was given, one draw per delay', () => {
    const backoff = new Backoff({ minMs: 100, maxMs: 5_000, jitter: 0.5 }, sequence(0, 0.5, 0.999_999));
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([100, 150, 200]);
  });
});
