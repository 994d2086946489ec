import { HeartbeatWindows, renewalsDue, renewalsDueFor } from './renewals-due';

describe('renewalsDueFor', () => {
  it('counts the TTL/3 marks after the grant that fall in (from, to]', () => {
    // TTL 60: due at 20 s, 40 s, 60 s, ... after the grant
    expect(renewalsDueFor(0, 20_000, 0, 19_999)).toBe(0);
    expect(renewalsDueFor(0, 20_000, 0, 20_000)).toBe(1);
    expect(renewalsDueFor(0, 20_000, 0, 120_000)).toBe(6);
    expect(renewalsDueFor(0, 20_000, 20_000, 40_000)).toBe(1);
    expect(renewalsDueFor(0, 20_000, 20_001, 39_999)).toBe(0);
  });

  it('owes nothing for a lease granted after the window, and counts from the grant inside it', () => {
    expect(renewalsDueFor(50_000, 20_000, 0, 40_000)).toBe(0);
    expect(renewalsDueFor(10_000, 20_000, 0, 70_000)).toBe(3);
  });

  it('sums over leases and skips pods that never registered', () => {
    expect(renewalsDue([0, 10_000, undefined], 60, 0, 70_000)).toBe(3 + 3);
  });
});

describe('HeartbeatWindows', () => {
  // TTL 60: windows of 20 s from the grant, a renewal due at each window's end.
  it('owes one renewal per window with a heartbeat, however many heartbeats it had', () => {
    const w = new HeartbeatWindows(2, 60);
    w.granted(0);
    w.heartbeat(0, 0, 5_000);
    w.heartbeat(0, 0, 15_000); // same window
    w.heartbeat(0, 0, 25_000);
    // window 2 (40-60 s) had no heartbeat
    w.heartbeat(0, 0, 65_000);
    expect(w.dueIn(0, 100_000)).toBe(3);
    // due at 20 s, 40 s and 80 s
    expect(w.dueIn(0, 40_000)).toBe(2);
    expect(w.dueIn(40_000, 100_000)).toBe(1);
  });

  it('starts over after a re-grant and ignores answers before the grant', () => {
    const w = new HeartbeatWindows(1, 60);
    w.granted(0);
    w.heartbeat(0, 0, 30_000); // window 1, due at 40 s
    w.granted(0); // re-registered at 35 s
    w.heartbeat(0, 35_000, 34_000); // before the grant: nothing
    w.heartbeat(0, 35_000, 36_000); // window 0 of the new lease, due at 55 s
    expect(w.dueIn(0, 60_000)).toBe(2);
  });
});
