import { decodeHeardSet, encodeHeardSet, HeardSetPublisher, HeardSetReader, HeardSetStore, instanceKeyHash } from './heard-sets';

/** Records in a map, as Redis would hold them; `failNext` / `hold` simulate a failing or slow Redis. */
class MemoryStore implements HeardSetStore {
  readonly records = new Map<string, Buffer>();
  readonly heads = new Map<string, number>();
  publishes = 0;
  failNext = false;
  private held: Array<() => void> = [];
  hold = false;

  async publish(replicaId: string, seq: number, record: Buffer): Promise<void> {
    this.publishes++;
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    if (this.failNext) {
      this.failNext = false;
      throw new Error('Connection is closed.');
    }
    this.records.set(`${replicaId}:${seq}`, record);
    this.heads.set(replicaId, seq);
  }

  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }

  async head(replicaId: string): Promise<number | undefined> {
    return this.heads.get(replicaId);
  }

  async read(replicaId: string, seq: number): Promise<Buffer | undefined> {
    return this.records.get(`${replicaId}:${seq}`);
  }
}

const hashesOf = (keys: string[]) => keys.flatMap((key) => instanceKeyHash(key));

describe('heard-set records', () => {
  it('round-trip: window and the hash of every key, in order', () => {
    const keys = ['/registry/services/orders/a', '/registry/services/orders/b'];
    const record = decodeHeardSet(encodeHeardSet(1_000, 3_000, keys));
    expect(record).toEqual({ fromMs: 1_000, toMs: 3_000, hashes: new Uint32Array(hashesOf(keys)) });
  });

  it('decodes anything else as undefined (a reader treats it as a gap)', () => {
    const good = encodeHeardSet(1, 2, ['/r/services/a/b']);
    expect(decodeHeardSet(good.subarray(0, good.length - 1))).toBeUndefined();
    expect(decodeHeardSet(Buffer.from('not a record at all, 24+ bytes long'))).toBeUndefined();
  });

  it('hashes keys apart that differ in one character, and the same key alike', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(instanceKeyHash(`/registry/services/orders/pod-${i}`).join(':'));
    expect(seen.size).toBe(10_000);
    expect(instanceKeyHash('/r/services/a/b')).toEqual(instanceKeyHash('/r/services/a/b'));
  });
});

describe('HeardSetPublisher', () => {
  function setup() {
    const store = new MemoryStore();
    let now = 10_000;
    const failures: string[] = [];
    const publisher = new HeardSetPublisher(store, { replicaId: 'abc', passMs: 2_000, now: () => now }, { failed: (err) => failures.push(err.message) });
    return { store, publisher, failures, advance: (ms: number) => (now += ms) };
  }

  it('publishes one record per pass, with what was heard during that pass only, numbered from 1', async () => {
    const { store, publisher, advance } = setup();
    publisher.heard('/r/services/a/1', 0);
    publisher.heard('/r/services/a/2', 0);
    advance(2_000);
    await publisher.pass();
    publisher.heard('/r/services/a/3', 0);
    advance(2_000);
    await publisher.pass();
    expect(store.publishes).toBe(2);
    expect(decodeHeardSet((await store.read('abc', 1))!)).toEqual({ fromMs: 10_000, toMs: 12_000, hashes: new Uint32Array(hashesOf(['/r/services/a/1', '/r/services/a/2'])) });
    expect(decodeHeardSet((await store.read('abc', 2))!)).toEqual({ fromMs: 12_000, toMs: 14_000, hashes: new Uint32Array(hashesOf(['/r/services/a/3'])) });
    expect(await store.head('abc')).toBe(2);
  });

  it('collects an instance once per pass, however many heartbeats it had (the caller says when it last heard it)', async () => {
    const { store, publisher, advance } = setup();
    publisher.heard('/r/services/a/7', 0);
    for (let i = 0; i < 3; i++) publisher.heard('/r/services/a/7', 10_500); // heard again within this pass
    publisher.heard('/r/services/a/5000', 9_000); // last heard in an earlier pass
    advance(2_000);
    await publisher.pass();
    publisher.heard('/r/services/a/7', 11_000); // heard in the previous pass: new in this one
    advance(2_000);
    await publisher.pass();
    expect(decodeHeardSet((await store.read('abc', 1))!)?.hashes).toEqual(new Uint32Array(hashesOf(['/r/services/a/7', '/r/services/a/5000'])));
    expect(decodeHeardSet((await store.read('abc', 2))!)?.hashes).toEqual(new Uint32Array(hashesOf(['/r/services/a/7'])));
  });

  it('publishes an empty record for a silent pass (no record would read as a gap)', async () => {
    const { store, publisher, advance } = setup();
    advance(2_000);
    await publisher.pass();
    expect(decodeHeardSet((await store.read('abc', 1))!)?.hashes.length).toBe(0);
  });

  it('a failed publish loses its record (readers see the seq gap) and is reported; the next one goes on', async () => {
    const { store, publisher, failures, advance } = setup();
    store.failNext = true;
    publisher.heard('/r/services/a/1', 0);
    advance(2_000);
    await publisher.pass();
    publisher.heard('/r/services/a/2', 0);
    advance(2_000);
    await publisher.pass();
    expect(failures).toEqual(['Connection is closed.']);
    expect(await store.read('abc', 1)).toBeUndefined();
    expect(decodeHeardSet((await store.read('abc', 2))!)?.fromMs).toBe(12_000);
    expect(publisher.stats).toMatchObject({ published: 1, failed: 1, lastPublishedAt: 14_000 });
  });

  it('a pass due while the last publish is in flight is skipped: its keys go into the next record, whose window is longer', async () => {
    const { store, publisher, advance } = setup();
    store.hold = true;
    publisher.heard('/r/services/a/1', 0);
    advance(2_000);
    const slow = publisher.pass();
    publisher.heard('/r/services/a/2', 0);
    advance(2_000);
    await publisher.pass(); // skipped: the first is still in flight
    store.release();
    await slow;
    advance(2_000);
    await publisher.pass();
    expect(store.publishes).toBe(2);
    expect(decodeHeardSet((await store.read('abc', 2))!)).toEqual({ fromMs: 12_000, toMs: 16_000, hashes: new Uint32Array(hashesOf(['/r/services/a/2'])) });
  });
});

describe('HeardSetReader (the expiry rule of shared leases)', () => {
  const TTL = 30_000;
  const key = '/r/services/orders/pod-1';

  /** Replica "me" reads replicas b and c; `publish(id, from, to, keys)` writes their next record. */
  function setup() {
    const store = new MemoryStore();
    const seqs = new Map<string, number>();
    const publish = (id: string, from: number, to: number, keys: string[] = []) => {
      const seq = (seqs.get(id) ?? 0) + 1;
      seqs.set(id, seq);
      return store.publish(id, seq, encodeHeardSet(from, to, keys));
    };
    /** A record that never arrived (a failed publish): the seq moves on, nothing is stored. */
    const lose = (id: string) => seqs.set(id, (seqs.get(id) ?? 0) + 1);
    const reader = new HeardSetReader(store, { selfId: 'me', passMs: 2_000, keepMs: 300_000 });
    /** Both replicas publish every 2 s from `start` to `end` (b hears `bHears` in the passes ending in `when`). */
    const passes = async (start: number, end: number, bHears: (to: number) => string[] = () => []) => {
      for (let t = start; t < end; t += 2_000) {
        await publish('b', t, t + 2_000, bHears(t + 2_000));
        await publish('c', t, t + 2_000);
      }
    };
    return { store, publish, lose, reader, passes };
  }

  it('expires an instance nobody heard for its TTL once every present replica covered that TTL', async () => {
    const { reader, passes } = setup();
    await passes(0, 40_000);
    await reader.refresh(['me', 'b', 'c'], 40_000);
    expect(reader.verdict(key, TTL, 5_000, 40_000)).toEqual({ expire: true });
  });

  it('never expires an instance another replica heard within its TTL, whatever this replica saw', async () => {
    const { reader, passes } = setup();
    await passes(0, 40_000, (to) => (to === 22_000 ? [key] : []));
    await reader.refresh(['me', 'b', 'c'], 40_000);
    expect(reader.verdict(key, TTL, 0, 40_000)).toEqual({ expire: false, reason: 'heard' });
    // Once that mark is older than the TTL, it expires.
    await passes(40_000, 54_000);
    await reader.refresh(['me', 'b', 'c'], 54_000);
    expect(reader.verdict(key, TTL, 0, 54_000)).toEqual({ expire: true });
  });

  it('pauses while a present replica has a gap within the TTL, and resumes once the gap is older than the TTL', async () => {
    const { reader, publish, lose } = setup();
    for (let t = 0; t < 40_000; t += 2_000) {
      if (t === 20_000) lose('b');
      else await publish('b', t, t + 2_000);
      await publish('c', t, t + 2_000);
    }
    await reader.refresh(['me', 'b', 'c'], 40_000);
    expect(reader.verdict(key, TTL, 0, 40_000)).toEqual({ expire: false, reason: 'gap' });
    for (let t = 40_000; t < 54_000; t += 2_000) {
      await publish('b', t, t + 2_000);
      await publish('c', t, t + 2_000);
    }
    await reader.refresh(['me', 'b', 'c'], 54_000);
    expect(reader.verdict(key, TTL, 0, 54_000)).toEqual({ expire: true });
  });

  it('pauses for a present replica that published nothing (Redis down, or not read yet), and while its last records are behind', async () => {
    const { reader, passes, publish } = setup();
    await passes(0, 40_000);
    await reader.refresh(['me', 'b', 'c', 'd'], 40_000);
    expect(reader.verdict(key, TTL, 0, 40_000)).toEqual({ expire: false, reason: 'gap' });
    // d is gone (its presence key vanished): it no longer counts.
    await reader.refresh(['me', 'b', 'c'], 40_000);
    expect(reader.verdict(key, TTL, 0, 40_000)).toEqual({ expire: true });
    // c stops publishing: 6 s later its last record is more than two passes old.
    await publish('b', 40_000, 46_000);
    await reader.refresh(['me', 'b', 'c'], 46_000);
    expect(reader.verdict(key, TTL, 0, 46_000)).toEqual({ expire: false, reason: 'gap' });
  });

  it("covers a replica from its first record (seq 1): a replica that started lately cannot have heard earlier", async () => {
    const { reader, publish } = setup();
    await publish('b', 35_000, 37_000);
    await publish('b', 37_000, 39_000);
    await reader.refresh(['me', 'b'], 40_000);
    expect(reader.verdict(key, TTL, 0, 40_000)).toEqual({ expire: true });
  });
});
