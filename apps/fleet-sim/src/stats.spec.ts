import { pairedRounds, percentile } from './stats';

describe('pairedRounds', () => {
  it('takes the median of the per-round ratios and names its round', () => {
    // Round 2 ran while the machine was busy for the yardstick only: one pair, not the figure.
    expect(pairedRounds([100, 60, 100], [90, 95, 80])).toEqual({ ratios: [0.9, 1.583, 0.8], ratio: 0.9, medianRound: 0 });
  });

  it('averages the middle two of an even count, and shows the lower one as representative', () => {
    expect(pairedRounds([100, 100], [70, 90])).toEqual({ ratios: [0.7, 0.9], ratio: 0.8, medianRound: 0 });
    expect(pairedRounds([10], [12])).toEqual({ ratios: [1.2], ratio: 1.2, medianRound: 0 });
  });

  it('is not moved by which side had the single best round (what best-of-each would report)', () => {
    const yardstick = [100, 130, 100];
    const gateway = [85, 90, 84];
    // best of each: 90 / 130 = 0.69; round by round: 0.85, 0.69, 0.84 -> 0.84
    expect(pairedRounds(yardstick, gateway).ratio).toBe(0.84);
  });

  it('refuses rounds that do not pair up', () => {
    expect(() => pairedRounds([1, 2], [1])).toThrow(/as many rounds/);
    expect(() => pairedRounds([], [])).toThrow(/as many rounds/);
  });
});

describe('percentile', () => {
  it('is nearest-rank', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([], 99)).toBe(0);
  });
});
