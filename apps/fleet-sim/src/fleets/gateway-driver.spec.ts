import { retryDelayMs } from './gateway-driver';

describe('retryDelayMs', () => {
  it('waits at least Retry-After, with under a second of jitter', () => {
    expect(retryDelayMs(2, 0, () => 0)).toBe(2000);
    expect(retryDelayMs(2, 5, () => 0.999)).toBe(2999);
  });

  it('backs off exponentially, capped at 5 s, when the answer had no Retry-After', () => {
    expect(retryDelayMs(undefined, 0, () => 0)).toBe(250);
    expect(retryDelayMs(undefined, 3, () => 0)).toBe(2000);
    expect(retryDelayMs(undefined, 10, () => 0)).toBe(5000);
  });
});
