import { EtcdLeaseInvalidError, GRPCUnavailableError } from 'etcd3';
import { QueueFullError } from '@app/concurrency';
import { BatchedPut, PutBatcher, PutOutcome, PutSink } from './put-batcher';

/** An etcd in memory: revisions, values with their leases, and which leases exist. */
class FakeEtcd implements PutSink {
  revision = 1;
  readonly kv = new Map<string, { value: string; leaseId: string }>();
  readonly deadLeases = new Set<string>();
  readonly txns: BatchedPut[][] = [];
  unavailable = false;
  /** While set, Txns are recorded but answered only on release(). */
  hold = false;
  private held: Array<() => void> = [];

  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }

  async putMany(items: readonly BatchedPut[]): Promise<PutOutcome[]> {
    this.txns.push([...items]);
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    if (this.unavailable) throw new GRPCUnavailableError('14 UNAVAILABLE: No connection established');
    if (new Set(items.map((i) => i.key)).size !== items.length) throw new Error('3 INVALID_ARGUMENT: etcdserver: duplicate key given in txn request');
    const bad = items.find((i) => this.deadLeases.has(i.leaseId));
    if (bad) throw new EtcdLeaseInvalidError(bad.leaseId);
    this.revision++;
    return items.map((i) => this.apply(i));
  }

  /** Requests with one put (what a plain Put would have been). */
  get singles(): BatchedPut[] {
    return this.txns.filter((t) => t.length === 1).map((t) => t[0]);
  }

  /** Requests with more than one put. */
  get batches(): BatchedPut[][] {
    return this.txns.filter((t) => t.length > 1);
  }

  private apply(item: BatchedPut): PutOutcome {
    const prev = this.kv.get(item.key);
    this.kv.set(item.key, { value: item.value, leaseId: item.leaseId });
    return { revision: String(this.revision), previous: prev && { key: item.key, value: prev.value, leaseId: prev.leaseId, modRevision: '1' } };
  }
}

/** A batcher whose scheduled flushes run only when the test says so (`turn()`). */
function setup(options: { maxBatchSize?: number; maxBatchBytes?: number; maxInFlight?: number; maxWaiting?: number } = {}) {
  const etcd = new FakeEtcd();
  const scheduled: Array<() => void> = [];
  const batcher = new PutBatcher(etcd, {
    maxBatchSize: options.maxBatchSize ?? 100,
    maxBatchBytes: options.maxBatchBytes ?? 1_000_000,
    maxInFlight: options.maxInFlight,
    maxWaiting: options.maxWaiting,
    schedule: (flush) => scheduled.push(flush),
  });
  const turn = async () => {
    for (const flush of scheduled.splice(0)) flush();
    await new Promise((r) => setImmediate(r));
  };
  return { etcd, batcher, turn, scheduled };
}

const item = (n: number, leaseId = `L${n}`): BatchedPut => ({ key: `/r/svc/i${n}`, value: `v${n}`, leaseId });

describe('PutBatcher', () => {
  it('sends the puts of one turn as one Txn and gives each caller its own outcome', async () => {
    const { etcd, batcher, turn } = setup();
    etcd.kv.set('/r/svc/i2', { value: 'old', leaseId: 'L0' });
    const results = [1, 2, 3].map((n) => batcher.put(item(n)));
    expect(etcd.txns).toHaveLength(0);
    await turn();
    const outcomes = await Promise.all(results);
    expect(etcd.txns).toHaveLength(1);
    expect(etcd.txns[0].map((i) => i.key)).toEqual(['/r/svc/i1', '/r/svc/i2', '/r/svc/i3']);
    expect(etcd.singles).toHaveLength(0);
    expect(outcomes.map((o) => o.previous?.value)).toEqual([undefined, 'old', undefined]);
    expect(new Set(outcomes.map((o) => o.revision)).size).toBe(1);
    expect(etcd.kv.get('/r/svc/i3')).toEqual({ value: 'v3', leaseId: 'L3' });
    expect(batcher.stats).toEqual({ requests: 1, puts: 3, fallbacks: 0 });
  });

  it('sends a lone put as a Txn of one put (the sink has no plain Put: on a shared lease it costs a check per key on it)', async () => {
    const { etcd, batcher, turn } = setup();
    const result = batcher.put(item(1));
    await turn();
    await expect(result).resolves.toMatchObject({ previous: undefined });
    expect(etcd.txns).toEqual([[item(1)]]);
  });

  it('flushes as soon as a batch is full, without waiting for the turn to end', async () => {
    const { etcd, batcher, turn } = setup({ maxBatchSize: 3 });
    const results = [1, 2, 3, 4, 5].map((n) => batcher.put(item(n)));
    await Promise.resolve();
    expect(etcd.txns.map((t) => t.length)).toEqual([3]);
    await turn();
    await Promise.all(results);
    expect(etcd.txns.map((t) => t.length)).toEqual([3, 2]);
  });

  it('with maxInFlight, puts arriving while a Txn is out go together when it returns, never over the batch size', async () => {
    const { etcd, batcher, turn } = setup({ maxBatchSize: 3, maxInFlight: 1 });
    etcd.hold = true;
    const first = batcher.put(item(1));
    await turn();
    // The first Txn is out: 7 puts arrive meanwhile, over several turns, and wait.
    const later = [2, 3, 4, 5, 6, 7, 8].map((n) => batcher.put(item(n)));
    await turn();
    expect(etcd.txns.map((t) => t.length)).toEqual([1]);
    etcd.release();
    await first;
    await turn();
    await Promise.all(later);
    expect(etcd.txns.map((t) => t.length)).toEqual([1, 3, 3, 1]);
  });

  it('refuses a put at once (QueueFullError) when maxInFlight Txns are out and maxWaiting puts already wait', async () => {
    const { etcd, batcher, turn } = setup({ maxInFlight: 1, maxWaiting: 2 });
    etcd.hold = true;
    const first = batcher.put(item(1));
    await turn();
    const waiting = [batcher.put(item(2)), batcher.put(item(3))];
    await expect(batcher.put(item(4))).rejects.toBeInstanceOf(QueueFullError);
    etcd.release();
    await first;
    await turn();
    await Promise.all(waiting);
    expect(etcd.txns.map((t) => t.length)).toEqual([1, 2]);
  });

  it('keeps a Txn under the byte bound', async () => {
    const { etcd, batcher, turn } = setup({ maxBatchBytes: 25 });
    // Each item is 9 + 2 = 11 bytes: two fit, the third starts a new batch.
    const results = [1, 2, 3, 4].map((n) => batcher.put(item(n)));
    await turn();
    await Promise.all(results);
    expect(etcd.txns.map((t) => t.length)).toEqual([2, 2]);
  });

  it('never puts one key twice in a Txn: the second write starts the next batch', async () => {
    const { etcd, batcher, turn } = setup();
    const first = batcher.put({ key: '/r/svc/a', value: 'one', leaseId: 'L1' });
    const other = batcher.put(item(2));
    const second = batcher.put({ key: '/r/svc/a', value: 'two', leaseId: 'L1' });
    await turn();
    await Promise.all([first, other, second]);
    expect(etcd.batches.map((t) => t.map((i) => i.key))).toEqual([['/r/svc/a', '/r/svc/i2']]);
    expect(etcd.singles.map((i) => i.value)).toEqual(['two']);
    expect(etcd.kv.get('/r/svc/a')?.value).toBe('two');
    expect((await second).previous?.value).toBe('one');
  });

  it('a bad lease in a batch fails only its own put: the Txn is re-sent one put per Txn', async () => {
    const { etcd, batcher, turn } = setup();
    etcd.deadLeases.add('L2');
    const settled = Promise.allSettled([1, 2, 3].map((n) => batcher.put(item(n))));
    await turn();
    const [one, two, three] = await settled;
    expect(one).toMatchObject({ status: 'fulfilled' });
    expect(two).toMatchObject({ status: 'rejected', reason: expect.any(EtcdLeaseInvalidError) });
    expect(three).toMatchObject({ status: 'fulfilled' });
    expect(etcd.kv.has('/r/svc/i1') && etcd.kv.has('/r/svc/i3')).toBe(true);
    expect(etcd.kv.has('/r/svc/i2')).toBe(false);
    expect(batcher.stats).toEqual({ requests: 4, puts: 3, fallbacks: 1 });
  });

  it('fails the whole batch at once when etcd is unreachable (single puts would only fail later)', async () => {
    const { etcd, batcher, turn } = setup();
    etcd.unavailable = true;
    const pending = Promise.allSettled([1, 2].map((n) => batcher.put(item(n))));
    await turn();
    const settled = await pending;
    expect(settled.every((s) => s.status === 'rejected' && s.reason instanceof GRPCUnavailableError)).toBe(true);
    expect(etcd.singles).toHaveLength(0);
  });

  it('schedules one flush per turn, however many puts join it', async () => {
    const { batcher, scheduled, turn } = setup();
    const results = [1, 2, 3].map((n) => batcher.put(item(n)));
    expect(scheduled).toHaveLength(1);
    await turn();
    await Promise.all(results);
    const later = batcher.put(item(4));
    expect(scheduled).toHaveLength(1);
    await turn();
    await later;
  });

  it('refuses a batch size below 1', () => {
    expect(() => new PutBatcher(new FakeEtcd(), { maxBatchSize: 0, maxBatchBytes: 1 })).toThrow(/positive integer/);
  });
});
