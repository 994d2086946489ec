import { InlineRenewal } from './inline-renewal';
import { TrackedLease } from './lease-table';
import { RenewalScheduler, RenewalTransport } from './renewal-scheduler';

class FakeStreams implements RenewalTransport {
  readonly sent: Array<{ leaseId: string; stream: number }> = [];
  open = true;
  constructor(readonly streamCount = 2) {}
  send(leaseId: string, stream: number): number {
    if (!this.open) return -1;
    this.sent.push({ leaseId, stream });
    return stream;
  }
  take(): string[] {
    return this.sent.splice(0).map((s) => s.leaseId);
  }
}

// Lease ids are etcd int64s (decimal strings).
const TTL = 9; // seconds: renewals become due after 3 s
const s = (seconds: number) => seconds * 1000;

function setup(maxInFlight = 10_000) {
  const streams = new FakeStreams();
  const lost: TrackedLease[] = [];
  const dropped: string[] = [];
  const engine = new InlineRenewal(streams, { leaseLost: (l) => lost.push(l), silentInstanceDropped: (l) => dropped.push(l.key) }, 100, maxInFlight);
  return { streams, engine, table: engine.table, lost, dropped };
}

describe('lease engine (table + renewal scheduler, one thread)', () => {
  it('absorbs heartbeats in memory and renews only when a third of the TTL has passed', () => {
    const { streams, engine, table } = setup();
    table.track('a', '101', TTL, '{}', 0);
    for (let t = 0; t < s(3); t += 100) {
      expect(table.heartbeat('a', t)).toBe('accepted');
      engine.renewDueLeases(t);
    }
    expect(streams.take()).toEqual([]);
    table.heartbeat('a', s(3));
    engine.renewDueLeases(s(3));
    expect(streams.take()).toEqual(['101']);
  });

  it('bounds renewals by instances/(TTL/3) whatever the heartbeat rate', () => {
    const { streams, engine, table } = setup();
    table.track('a', '101', TTL, '{}', 0);
    let renewals = 0;
    for (let t = 0; t <= s(30); t += 50) {
      table.heartbeat('a', t); // 20 heartbeats a second
      renewals += engine.renewDueLeases(t);
      for (const id of streams.take()) engine.onAnswer(id, TTL, t);
    }
    expect(renewals).toBe(10); // 30 s / 3 s
    expect(engine.scheduler.stats()).toMatchObject({ sent: 10, confirmed: 10, lost: 0, backlog: 0 });
  });

  it('does not renew an instance that stopped heartbeating, then drops it after two TTLs', () => {
    const { streams, engine, table, dropped } = setup();
    table.track('a', '101', TTL, '{}', 0);
    for (let t = 0; t <= s(20); t += 500) engine.renewDueLeases(t);
    expect(streams.take()).toEqual([]);
    expect(dropped).toEqual(['a']);
    expect(table.heartbeat('a', s(21))).toBe('unknown');
    expect(engine.scheduler.stats().tracked).toBe(0);
  });

  it('keeps an instance whose pod heartbeated again before the silent report arrived', () => {
    // Across threads the report can race a heartbeat: the table re-checks before forgetting.
    const { engine, table, dropped } = setup();
    const b = table.track('b', '102', TTL, '{}', 0);
    table.heartbeat('b', s(1));
    table.onSilent([b.slot], s(2));
    expect(dropped).toEqual([]);
    expect(table.get('b')).toBeDefined();
    expect(engine.scheduler.isTracked(b.slot)).toBe(true);
  });

  it('treats a pod that was silent longer than its TTL as unknown, even before the table drops it', () => {
    const { table } = setup();
    table.track('a', '101', TTL, '{}', 0);
    expect(table.heartbeat('a', s(TTL) + 1)).toBe('unknown');
    expect(table.get('a')).toBeUndefined();
  });

  it('renews a lease learned from etcd at the next pass', () => {
    const { streams, engine, table } = setup();
    engine.renewDueLeases(s(100) - 500);
    table.track('a', '107', TTL, '{}', s(100), s(100) - s(TTL));
    engine.renewDueLeases(s(100) + 100);
    expect(streams.take()).toEqual(['107']);
  });

  it('re-sends an unanswered renewal after a third of the TTL, and renewals lost with a broken stream at once', () => {
    const { streams, engine, table } = setup();
    table.track('a', '101', TTL, '{}', 0);
    table.heartbeat('a', s(3));
    engine.renewDueLeases(s(3));
    expect(streams.take()).toEqual(['101']);
    engine.renewDueLeases(s(4)); // in flight: not sent twice
    expect(streams.take()).toEqual([]);
    engine.scheduler.onStreamReset(0, s(4));
    engine.scheduler.onStreamReset(1, s(4));
    engine.renewDueLeases(s(4) + 100);
    expect(streams.take()).toEqual(['101']);
    engine.renewDueLeases(s(7) + 200); // still unanswered after TTL/3: sent again
    expect(streams.take()).toEqual(['101']);
  });

  it('keeps leases due while no stream is open, and reports them as backlog', () => {
    const { streams, engine, table } = setup();
    table.track('a', '101', TTL, '{}', 0);
    table.heartbeat('a', s(3));
    streams.open = false;
    expect(engine.renewDueLeases(s(3))).toBe(0);
    expect(engine.scheduler.stats()).toMatchObject({ backlog: 1, oldestDueSince: s(3) });
    streams.open = true;
    expect(engine.renewDueLeases(s(3) + 500)).toBe(1);
    engine.onAnswer('101', TTL, s(3) + 600);
    expect(engine.scheduler.stats()).toMatchObject({ backlog: 0, oldestDueSince: 0, confirmed: 1 });
  });

  it('never has more renewals in flight than allowed; the rest waits as backlog', () => {
    const { streams, engine, table } = setup(3);
    for (let i = 0; i < 5; i++) table.track(`k${i}`, String(200 + i), TTL, '{}', 0);
    for (let i = 0; i < 5; i++) table.heartbeat(`k${i}`, s(1));
    expect(engine.renewDueLeases(s(3))).toBe(3);
    expect(engine.scheduler.stats()).toMatchObject({ inFlight: 3, backlog: 5 });
    for (const id of streams.take()) engine.onAnswer(id, TTL, s(3) + 50);
    expect(engine.renewDueLeases(s(3) + 100)).toBe(2);
  });

  it('reports a lost lease only on a heartbeat after etcd answered TTL 0, and resumes after re-grant', () => {
    const { streams, engine, table, lost } = setup();
    table.track('a', '101', TTL, 'value-a', 0);
    table.heartbeat('a', s(3));
    engine.renewDueLeases(s(3));
    streams.take();
    engine.onAnswer('101', 0, s(3) + 10);
    expect(lost).toEqual([]);
    expect(engine.scheduler.stats().lost).toBe(1);
    expect(table.heartbeat('a', s(4))).toBe('lease-lost');
    expect(lost.map((l) => [l.key, l.leaseId, l.ttlMs])).toEqual([['a', '101', s(TTL)]]);
    table.replaceLease('a', '102', s(4) + 5);
    expect(table.heartbeat('a', s(5))).toBe('accepted');
    table.heartbeat('a', s(8));
    engine.renewDueLeases(s(8));
    expect(streams.take()).toEqual(['102']);
    engine.onAnswer('101', 10, s(8)); // a late answer for the old lease is ignored
    expect(table.get('a')?.leaseId).toBe('102');
  });

  it('spreads leases over the streams', () => {
    const { streams, engine, table } = setup();
    for (let i = 0; i < 4; i++) table.track(`k${i}`, String(300 + i), TTL, '{}', 0, -s(TTL));
    for (let i = 0; i < 4; i++) table.heartbeat(`k${i}`, 1);
    engine.renewDueLeases(2);
    expect(streams.sent.map((x) => x.stream)).toEqual([0, 1, 0, 1]);
  });

  it('reuses the slots of forgotten instances', () => {
    const { table } = setup();
    const a = table.track('a', '1', TTL, '{}', 0);
    table.forget('a');
    const b = table.track('b', '2', TTL, '{}', 0);
    expect(b.slot).toBe(a.slot);
    expect(table.heartbeat('b', 1)).toBe('accepted');
  });

  it('a pass costs O(due leases), not O(tracked leases)', () => {
    // Unit benchmark (printed, not asserted on time): 100k and 1M tracked, 1% due per pass.
    for (const tracked of [100_000, 1_000_000]) {
      const streams = new FakeStreams();
      const engine = new InlineRenewal(streams, {}, 500, 1_000_000);
      const ttl = 60;
      // Renewal times spread over one renewal period (20 s), so each 500 ms pass finds 1/40 due.
      for (let i = 0; i < tracked; i++) engine.table.track(`k${i}`, String(i + 1), ttl, '', 0, -Math.floor((i / tracked) * 20_000));
      for (let i = 0; i < tracked; i++) engine.table.heartbeat(`k${i}`, 1);
      engine.renewDueLeases(0);
      streams.take();
      const started = process.hrtime.bigint();
      const sent = engine.renewDueLeases(500);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      process.stdout.write(`renewal pass at ${tracked} tracked: ${sent} due and sent in ${ms.toFixed(1)} ms\n`);
      expect(sent).toBeGreaterThan(tracked / 50);
      expect(sent).toBeLessThan(tracked / 30);
    }
  });
});

describe('renewal scheduler coordinated through a ledger', () => {
  function coordinated() {
    const streams = new FakeStreams();
    const confirmed: string[] = [];
    const pod = { heartbeatAt: s(2) };
    const scheduler = new RenewalScheduler(
      streams,
      { heartbeatAt: () => pod.heartbeatAt, confirmed: (_slot, leaseId) => confirmed.push(leaseId) },
      { tickMs: 100, maxInFlight: 100, coordinated: true },
    );
    return { streams, scheduler, confirmed, pod };
  }

  it('hands due renewals to the ledger instead of sending them, and sends those it may renew', () => {
    const { streams, scheduler, confirmed } = coordinated();
    scheduler.track(0, '11', s(TTL), 0);
    scheduler.track(1, '12', s(TTL), 0);
    expect(scheduler.renewDueLeases(s(3))).toBe(0);
    expect(streams.take()).toEqual([]);
    const claims = scheduler.takeClaims();
    expect(claims.map((c) => c.leaseId)).toEqual(['11', '12']);
    expect(scheduler.takeClaims()).toEqual([]);
    scheduler.sendClaimed(0, s(3) + 5);
    expect(streams.take()).toEqual(['11']);
    scheduler.onAnswer('11', TTL, s(3) + 10);
    expect(confirmed).toEqual(['11']);
  });

  it('skips a lease another replica renewed, until its next period', () => {
    const { streams, scheduler, pod } = coordinated();
    scheduler.track(1, '12', s(TTL), 0);
    scheduler.renewDueLeases(s(3));
    scheduler.takeClaims();
    scheduler.renewedElsewhere(1, s(3) - 50);
    pod.heartbeatAt = s(4);
    expect(scheduler.stats()).toMatchObject({ deduplicated: 1, backlog: 0 });
    scheduler.renewDueLeases(s(5));
    expect(scheduler.takeClaims()).toEqual([]);
    scheduler.renewDueLeases(s(6));
    expect(scheduler.takeClaims().map((c) => c.leaseId)).toEqual(['12']);
    expect(streams.take()).toEqual([]);
  });

  it('asks again shortly when another replica holds the claim', () => {
    const { scheduler } = coordinated();
    scheduler.track(1, '12', s(TTL), 0);
    scheduler.renewDueLeases(s(3));
    scheduler.takeClaims();
    scheduler.claimedElsewhere(1, s(3));
    scheduler.renewDueLeases(s(4) + 100);
    expect(scheduler.takeClaims().map((c) => c.leaseId)).toEqual(['12']);
  });
});
