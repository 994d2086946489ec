import { renewalsDue, renewalsDueFor } from './renewals-due';

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
