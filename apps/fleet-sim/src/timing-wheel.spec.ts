import { TimingWheel } from './timing-wheel';

const drain = (w: TimingWheel, now: number): number[] => {
  const out: number[] = [];
  w.due(now, (i) => out.push(i));
  return out;
};

describe('TimingWheel', () => {
  it('hands out items once their bucket has begun, oldest first', () => {
    const w = new TimingWheel(10);
    w.schedule(1, 1025);
    w.schedule(2, 1003);
    w.schedule(3, 1500);
    expect(drain(w, 1001)).toEqual([2]);
    expect(drain(w, 1019)).toEqual([]);
    expect(drain(w, 1020)).toEqual([1]);
    expect(w.size).toBe(1);
    expect(drain(w, 5000)).toEqual([3]);
    expect(w.size).toBe(0);
  });

  it('keeps the order of scheduling within a bucket and picks up items scheduled before the first call', () => {
    const w = new TimingWheel(10);
    w.schedule(7, 0);
    w.schedule(5, 55);
    w.schedule(6, 51);
    expect(drain(w, 60)).toEqual([7, 5, 6]);
  });

  it('puts an item scheduled in the past into the next call, so a rescheduling callback cannot loop', () => {
    const w = new TimingWheel(10);
    w.schedule(1, 100);
    let calls = 0;
    w.due(100, (i) => {
      calls++;
      w.schedule(i, 50); // already passed
    });
    expect(calls).toBe(1);
    expect(w.size).toBe(1);
    expect(drain(w, 100)).toEqual([]);
    expect(drain(w, 110)).toEqual([1]);
  });

  it('drives a periodic schedule without losing or duplicating ticks', () => {
    const w = new TimingWheel(10);
    const fired = new Map<number, number>();
    for (let pod = 0; pod < 100; pod++) w.schedule(pod, pod * 7);
    const next = Array.from({ length: 100 }, (_, pod) => pod * 7);
    const fire = (pod: number) => {
      fired.set(pod, (fired.get(pod) ?? 0) + 1);
      next[pod] += 1000;
      w.schedule(pod, next[pod]);
    };
    // The driver's interval runs late and irregularly.
    for (let now = 0; now < 20_000; now += 13 + (now % 37)) w.due(now, fire);
    w.due(20_009, fire);
    // Each pod ticks at pod*7 + k*1000 for k = 0..19 (< 20,000), plus pod 0 and 1 at 20,000 / 20,007 (same bucket).
    for (let pod = 0; pod < 100; pod++) expect(fired.get(pod)).toBe(pod <= 1 ? 21 : 20);
  });

  it('rejects a non-positive tick', () => {
    expect(() => new TimingWheel(0)).toThrow(/tickMs/);
  });
});
