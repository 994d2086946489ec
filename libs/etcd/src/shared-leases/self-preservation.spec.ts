import { SelfPreservation } from './self-preservation';

describe('SelfPreservation', () => {
  const hold = () => new SelfPreservation({ threshold: 0.5, maxMs: 10_000 });

  it('turns on when more than the threshold of tracked instances goes silent at once, and off when heartbeats return', () => {
    const sp = hold();
    expect(sp.update(0, 100, 40)).toBeUndefined();
    expect(sp.update(1_000, 100, 60)).toBe('entered');
    expect(sp.active).toBe(true);
    expect(sp.update(2_000, 100, 70)).toBeUndefined();
    expect(sp.update(3_000, 100, 10)).toBe('released');
    expect(sp.active).toBe(false);
  });

  it('holds at most maxMs, then believes the silence until it ends once', () => {
    const sp = hold();
    sp.update(0, 100, 90);
    expect(sp.update(10_000, 100, 90)).toBe('expired');
    expect(sp.active).toBe(false);
    expect(sp.update(20_000, 100, 90)).toBeUndefined();
    expect(sp.active).toBe(false);
    sp.update(21_000, 100, 0);
    expect(sp.update(22_000, 100, 90)).toBe('entered');
  });

  it('never turns on for a handful of instances, or when switched off', () => {
    expect(hold().update(0, 4, 4)).toBeUndefined();
    expect(new SelfPreservation({ threshold: 0, maxMs: 10_000 }).update(0, 100, 100)).toBeUndefined();
  });
});
