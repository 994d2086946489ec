import { InlineRenewal } from './inline-renewal';
import { InstanceValues } from './lease-table';

/** A value store that records what the table hands it, like InstanceDirectory does. */
class RecordingValues implements InstanceValues {
  readonly byKey = new Map<string, string>();
  readonly writes: Array<[string, string, string]> = [];
  written(key: string, value: string, leaseId: string): string {
    this.writes.push([key, value, leaseId]);
    this.byKey.set(key, value);
    return key;
  }
  latest(key: string): string | undefined {
    return this.byKey.get(key);
  }
}

function setup() {
  const values = new RecordingValues();
  const engine = new InlineRenewal({ send: () => 0, streamCount: 1 }, { values });
  return { values, engine, table: engine.table };
}

describe('LeaseTable', () => {
  it('marks the slot of every tracked instance and of every heartbeat of a known one as heard (heard-sets), nothing for unknown keys', () => {
    const heard: number[] = [];
    const { table } = (() => {
      const engine = new InlineRenewal({ send: () => 0, streamCount: 1 }, { values: new RecordingValues(), heard: (slot) => heard.push(slot) });
      return { table: engine.table };
    })();
    const a = table.track('/r/services/s/a', '101', 30, 'v', 0);
    table.track('/r/services/s/b', '102', 30, 'v', 0);
    expect(table.heartbeat('/r/services/s/a', 1_000)).toBe('accepted');
    expect(table.heartbeat('/r/services/s/zz', 1_000)).toBe('unknown');
    expect(heard).toEqual([a.slot, a.slot + 1, a.slot]);
    expect(table.keyOf(a.slot)).toBe('/r/services/s/a');
  });

  it('keeps no value: track() hands it to the value store, and a re-grant reads the store', () => {
    const { values, table } = setup();
    table.track('k', '101', 30, 'registered', 0);
    expect(values.writes).toEqual([['k', 'registered', '101']]);
    // What an instance costs the table: key, slot, lease, TTL. No value, no per-instance object.
    expect(table.get('k')).toEqual({ key: 'k', slot: 0, leaseId: '101', ttlMs: 30_000 });
    values.byKey.set('k', 'patched through another replica');
    expect(table.latestValue('k')).toBe('patched through another replica');
    table.written('k', 'patched here', '101', 5);
    expect(table.latestValue('k')).toBe('patched here');
  });

  it('answers views that follow the slot: replaced leases, forgotten keys, reused slots', () => {
    const { table } = setup();
    table.track('a', '9007199254740993', 60, 'va', 0); // above 2^53: kept exact as an int64
    table.track('b', '102', 30, 'vb', 0);
    expect(table.get('a')?.leaseId).toBe('9007199254740993');
    table.replaceLease('a', '103', 10);
    expect(table.get('a')).toMatchObject({ leaseId: '103', ttlMs: 60_000 });
    const a = table.get('a')!;
    expect(table.forget('a')).toEqual(a);
    expect(table.has('a')).toBe(false);
    expect(table.isLost(a)).toBe(false);
    expect(table.heartbeat('a', 20)).toBe('unknown');
    // InlineRenewal releases the slot at once: the next instance takes it.
    expect(table.track('c', '104', 30, 'vc', 30).slot).toBe(a.slot);
    expect([...table.values()].map((l) => [l.key, l.leaseId]).sort()).toEqual([
      ['b', '102'],
      ['c', '104'],
    ]);
  });

  it('tells a lost lease from the current one of the same slot', () => {
    const { engine, table } = setup();
    table.track('a', '101', 9, 'va', 0);
    table.heartbeat('a', 3_000);
    engine.renewDueLeases(3_000);
    engine.onAnswer('101', 0, 3_010);
    const lost = table.get('a')!;
    expect(table.isLost(lost)).toBe(true);
    table.replaceLease('a', '102', 3_020);
    expect(table.isLost(table.get('a')!)).toBe(false);
    expect(table.heartbeat('a', 3_030)).toBe('accepted');
  });
});
