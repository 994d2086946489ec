import type { RenewalTransport } from '../keepalive-streams';
import { LegacyLeaseRenewals, LegacyLeaseRenewalsOptions } from './legacy-lease-renewals';

/** Keepalive streams as a list of sent lease ids; `open` false = no stream (send returns -1). */
class FakeStreams implements RenewalTransport {
  readonly sent: string[] = [];
  open = true;
  readonly streamCount = 2;

  send(leaseId: string, preferredStream: number): number {
    if (!this.open) return -1;
    this.sent.push(leaseId);
    return preferredStream;
  }

  take(): string[] {
    return this.sent.splice(0);
  }
}

function setup(options: LegacyLeaseRenewalsOptions = {}) {
  let now = 1_000_000;
  const streams = new FakeStreams();
  /** key -> its lease in the directory. */
  const directory = new Map<string, bigint>();
  const logs: string[] = [];
  const renewals = new LegacyLeaseRenewals(streams, { leaseOf: (key) => directory.get(key) }, { ...options, now: () => now }, { log: (_level, message) => logs.push(message) });
  const legacy = (key: string, lease: bigint) => directory.set(key, lease);
  /** Time passes without a timer turn. */
  const move = (ms: number) => (now += ms);
  /** Time passes, then a timer turn. */
  const advance = (ms: number) => renewals.tick(move(ms));
  return { renewals, streams, directory, legacy, advance, move, logs };
}

const TTL = 30;

describe('LegacyLeaseRenewals', () => {
  afterEach(() => jest.useRealTimers());

  it('renews a legacy lease at once the first time its pod is heard (its last renewal is unknown), then a third of its TTL after that renewal if the pod was heard since', () => {
    const { renewals, streams, legacy, advance } = setup();
    legacy('/r/services/a/1', 77n);
    renewals.heard('/r/services/a/1', 77n);
    expect(streams.take()).toEqual(['77']);
    expect(renewals.answered('77', TTL)).toBe(true);
    advance(5_000);
    renewals.heard('/r/services/a/1', 77n); // heard, but the lease was renewed 5 s ago
    advance(4_000);
    expect(streams.take()).toEqual([]);
    advance(1_000); // 10 s = TTL/3 since the renewal, heard since
    expect(streams.take()).toEqual(['77']);
    renewals.answered('77', TTL);
    expect(renewals.stats).toMatchObject({ leases: 1, sent: 2, confirmed: 2 });
  });

  it('never renews more often than the pod is heard here, and gives a lease up once its pod was not heard for the lease TTL: it lapses, as before', () => {
    const { renewals, streams, legacy, advance } = setup();
    legacy('/r/services/a/1', 77n);
    renewals.heard('/r/services/a/1', 77n);
    renewals.answered('77', TTL);
    streams.take();
    for (let i = 0; i < 29; i++) advance(1_000);
    expect(streams.take()).toEqual([]); // not heard since its renewal: nothing to renew
    advance(2_000); // 31 s without a heartbeat here
    expect(renewals.stats).toMatchObject({ leases: 0, silent: 1, sent: 1 });
  });

  it('renews a long-interval pod at its heartbeat, not a tick later: the lease outlives every heartbeat by its TTL', () => {
    const { renewals, streams, legacy, advance, move } = setup();
    legacy('/r/services/slow/1', 90n);
    renewals.heard('/r/services/slow/1', 90n);
    renewals.answered('90', TTL);
    streams.take();
    // Heartbeats every 25 s on a 30 s lease: the ticks in between renew nothing (not heard since), the heartbeat does at once.
    for (let i = 0; i < 3; i++) {
      advance(24_999);
      expect(streams.take()).toEqual([]);
      move(1);
      renewals.heard('/r/services/slow/1', 90n);
      expect(streams.take()).toEqual(['90']);
      renewals.answered('90', TTL);
    }
  });

  it('drops a lease once its instance moved (the directory shows another lease) or etcd answers TTL 0 (revoked after its move)', () => {
    const { renewals, streams, legacy, directory, advance } = setup();
    legacy('/r/services/a/1', 77n);
    legacy('/r/services/a/2', 78n);
    renewals.heard('/r/services/a/1', 77n);
    renewals.heard('/r/services/a/2', 78n);
    expect(streams.take()).toEqual(['77', '78']);
    renewals.answered('77', TTL);
    directory.set('/r/services/a/1', 500n); // moved onto shared lease 500 (by this replica or another)
    advance(500);
    expect(renewals.answered('78', 0)).toBe(true);
    expect(renewals.stats).toMatchObject({ leases: 0, lost: 1 });
    expect(renewals.answered('78', TTL)).toBe(false); // no longer one of these: SharedLeases' or nobody's
  });

  it('sends at most maxInFlight renewals unanswered; the rest go out as etcd answers, those renewed longest ago first', () => {
    const { renewals, streams, legacy, advance } = setup({ maxInFlight: 2 });
    for (const lease of [1n, 2n, 3n]) {
      legacy(`/r/services/a/${lease}`, lease);
      renewals.heard(`/r/services/a/${lease}`, lease);
    }
    expect(streams.take()).toEqual(['1', '2']);
    renewals.answered('1', TTL);
    advance(500);
    expect(streams.take()).toEqual(['3']); // never renewed here: before any lease renewed once
    renewals.answered('2', TTL);
    renewals.answered('3', TTL);
    for (const lease of [3n, 1n, 2n]) renewals.heard(`/r/services/a/${lease}`, lease);
    advance(10_000);
    expect(streams.take()).toEqual(['1', '2']);
  });

  it('re-sends a renewal left unanswered for 2 s, and one that found no stream open at the next tick', () => {
    const { renewals, streams, legacy, advance } = setup();
    legacy('/r/services/a/1', 77n);
    streams.open = false;
    renewals.heard('/r/services/a/1', 77n);
    expect(streams.take()).toEqual([]);
    streams.open = true;
    advance(500);
    expect(streams.take()).toEqual(['77']);
    advance(1_500);
    expect(streams.take()).toEqual([]);
    advance(500);
    expect(streams.take()).toEqual(['77']);
  });

  it('tracks at most maxLeases leases; a legacy instance heard beyond that is counted, logged once, and left to its lease', () => {
    const { renewals, streams, legacy, logs } = setup({ maxLeases: 2 });
    for (const lease of [1n, 2n, 3n, 4n]) {
      legacy(`/r/services/a/${lease}`, lease);
      renewals.heard(`/r/services/a/${lease}`, lease);
    }
    expect(streams.take()).toEqual(['1', '2']);
    expect(renewals.stats).toMatchObject({ leases: 2, refused: 2 });
    expect(logs.filter((line) => line.includes('left to its lease'))).toHaveLength(1);
  });

  it('runs a timer only while a lease is tracked: nothing at all once the migration is done', () => {
    jest.useFakeTimers();
    const { renewals, legacy, directory } = setup();
    expect(jest.getTimerCount()).toBe(0);
    legacy('/r/services/a/1', 77n);
    renewals.heard('/r/services/a/1', 77n);
    expect(jest.getTimerCount()).toBe(1);
    directory.delete('/r/services/a/1');
    jest.advanceTimersByTime(1_000);
    expect(renewals.stats.leases).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('orphan() stops renewing and tracks nothing more', () => {
    const { renewals, streams, legacy } = setup();
    legacy('/r/services/a/1', 77n);
    renewals.orphan();
    renewals.heard('/r/services/a/1', 77n);
    expect(streams.take()).toEqual([]);
    expect(renewals.stats.leases).toBe(0);
  });
});
