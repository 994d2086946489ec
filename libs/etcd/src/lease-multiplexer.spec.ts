import { LeaseMultiplexer, RenewalTransport, TrackedLease } from './lease-multiplexer';

class FakeStreams implements RenewalTransport {
  readonly sent: Array<{ leaseId: string; stream: number }> = [];
  open = true;
  constructor(readonly streamCount = 2) {}
  send(leaseId: string, stream: number): boolean {
    if (!this.open) return false;
    this.sent.push({ leaseId, stream });
    return true;
  }
  take(): string[] {
    return this.sent.splice(0).map((s) => s.leaseId);
  }
}

const TTL = 9; // seconds: renewals become due after 3 s
const s = (seconds: number) => seconds * 1000;

function setup() {
  const streams = new FakeStreams();
  const lost: TrackedLease[] = [];
  const dropped: string[] = [];
  const mux = new LeaseMultiplexer(streams, {
    leaseLost: (l) => lost.push(l),
    silentInstanceDropped: (l) => dropped.push(l.key),
  });
  return { streams, mux, lost, dropped };
}

describe('LeaseMultiplexer', () => {
  it('absorbs heartbeats in memory and renews only when a third of the TTL has passed', () => {
    const { streams, mux } = setup();
    mux.track('a', 'L1', TTL, '{}', 0);
    for (let t = 0; t < s(3); t += 100) {
      expect(mux.heartbeat('a', t)).toBe('accepted');
      mux.renewDueLeases(t);
    }
    expect(streams.take()).toEqual([]);
    mux.heartbeat('a', s(3));
    mux.renewDueLeases(s(3));
    expect(streams.take()).toEqual(['L1']);
  });

  it('bounds renewals by instances/(TTL/3) whatever the heartbeat rate', () => {
    const { streams, mux } = setup();
    mux.track('a', 'L1', TTL, '{}', 0);
    let renewals = 0;
    for (let t = 0; t <= s(30); t += 50) {
      mux.heartbeat('a', t); // 20 heartbeats a second
      renewals += mux.renewDueLeases(t);
      for (const id of streams.take()) mux.onRenewalAnswer(id, TTL, t);
    }
    expect(renewals).toBe(10); // 30 s / 3 s
  });

  it('does not renew an instance that stopped heartbeating, then drops it after two TTLs', () => {
    const { streams, mux, dropped } = setup();
    mux.track('a', 'L1', TTL, '{}', 0);
    for (let t = 0; t <= s(20); t += 500) mux.renewDueLeases(t);
    expect(streams.take()).toEqual([]);
    expect(dropped).toEqual(['a']);
    expect(mux.heartbeat('a', s(21))).toBe('unknown');
  });

  it('treats a pod that was silent longer than its TTL as unknown, even before the table drops it', () => {
    const { mux } = setup();
    mux.track('a', 'L1', TTL, '{}', 0);
    expect(mux.heartbeat('a', s(TTL) + 1)).toBe('unknown');
    expect(mux.get('a')).toBeUndefined();
  });

  it('renews a lease learned from etcd at the next pass', () => {
    const { streams, mux } = setup();
    mux.track('a', 'L7', TTL, '{}', s(100), s(100) - s(TTL));
    mux.renewDueLeases(s(100) + 1);
    expect(streams.take()).toEqual(['L7']);
  });

  it('re-sends an unanswered renewal and renewals lost with a broken stream', () => {
    const { streams, mux } = setup();
    mux.track('a', 'L1', TTL, '{}', 0);
    mux.heartbeat('a', s(3));
    mux.renewDueLeases(s(3));
    expect(streams.take()).toEqual(['L1']);
    mux.renewDueLeases(s(4)); // in flight: not sent twice
    expect(streams.take()).toEqual([]);
    mux.onStreamReset();
    mux.renewDueLeases(s(4));
    expect(streams.take()).toEqual(['L1']);
  });

  it('keeps leases due while no stream is open', () => {
    const { streams, mux } = setup();
    mux.track('a', 'L1', TTL, '{}', 0);
    mux.heartbeat('a', s(3));
    streams.open = false;
    expect(mux.renewDueLeases(s(3))).toBe(0);
    streams.open = true;
    expect(mux.renewDueLeases(s(3) + 500)).toBe(1);
  });

  it('reports a lost lease only on a heartbeat after etcd answered TTL 0, and resumes after re-grant', () => {
    const { streams, mux, lost } = setup();
    mux.track('a', 'L1', TTL, 'value-a', 0);
    mux.heartbeat('a', s(3));
    mux.renewDueLeases(s(3));
    streams.take();
    mux.onRenewalAnswer('L1', 0, s(3) + 10);
    expect(lost).toEqual([]);
    expect(mux.heartbeat('a', s(4))).toBe('lease-lost');
    expect(lost.map((l) => [l.key, l.payload])).toEqual([['a', 'value-a']]);
    mux.replaceLease('a', 'L2', s(4) + 5);
    mux.heartbeat('a', s(8));
    mux.renewDueLeases(s(8));
    expect(streams.take()).toEqual(['L2']);
    mux.onRenewalAnswer('L1', 10, s(8)); // a late answer for the old lease is ignored
    expect(mux.get('a')?.leaseId).toBe('L2');
  });

  it('spreads leases over the streams', () => {
    const { streams, mux } = setup();
    for (let i = 0; i < 4; i++) mux.track(`k${i}`, `L${i}`, TTL, '{}', 0, -s(TTL));
    for (let i = 0; i < 4; i++) mux.heartbeat(`k${i}`, 1);
    mux.renewDueLeases(2);
    expect(streams.sent.map((x) => x.stream)).toEqual([0, 1, 0, 1]);
  });
});
