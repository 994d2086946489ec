import { backoffMs } from './backoff';

describe('backoffMs', () => {
  it('doubles from the minimum per failure in a row and stops at the maximum', () => {
    expect([1, 2, 3, 4, 5, 6].map((failures) => backoffMs(failures, 500, 10_000, () => 1))).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000]);
    expect(backoffMs(10_000, 500, 10_000, () => 1)).toBe(10_000);
  });

  it('is half fixed, half random', () => {
    expect(backoffMs(1, 1_000, 10_000, () => 0)).toBe(500);
    expect(backoffMs(1, 1_000, 10_000, () => 0.5)).toBe(750);
  });
});
