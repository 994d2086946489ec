import { PeriodicPass } from '@app/concurrency';
import type { RedisClient } from '@app/redis';

/**
 * Heard-sets: which instances a replica heard from (heartbeats, registrations) during one pass,
 * published once per pass, so that a replica expiring instances itself (shared leases, issue 21,
 * docs/shared-leases.md section 2) can tell that no replica heard a pod before deleting it, without
 * any per-heartbeat traffic between replicas and without any per-instance work on etcd.
 *
 * A record is one Redis string per replica per pass (`<namespace>{<replica>}<seq>`, PX 60 s), plus a
 * head key (`<namespace>{<replica>}head` = the last seq) where a reader starts. Both keys share the
 * replica's hash tag, so they live on one Cluster slot and go in one pipeline. Readers fetch every
 * seq after the last they read: a seq they cannot find (Redis down, a record that expired, a publish
 * that failed) is a gap, and a gap must make a reader pause the deletions whose window it covers.
 *
 * Record layout (little endian): u32 format (1), u32 count, f64 window start (epoch ms), f64 window end,
 * then `count` 64-bit hashes of instance keys (instanceKeyHash, as two u32: high, low). Duplicates are
 * allowed. A hash collision can only make a reader believe an instance was heard: delay an expiry by a
 * pass, never cause one.
 */
export interface HeardSetRecord {
  fromMs: number;
  toMs: number;
  /** Pairs of u32 [high, low] per heard instance key. */
  hashes: Uint32Array;
}

const FORMAT = 1;
const HEADER_BYTES = 24;

/** 64-bit hash of an instance key as two independent 32-bit FNV-1a hashes (different offset bases). */
export function instanceKeyHash(key: string): [number, number] {
  let high = 0x811c9dc5;
  let low = 0x050c5d1f;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    high = Math.imul(high ^ c, 0x01000193);
    low = Math.imul(low ^ c, 0x01000193) ^ (low >>> 15);
  }
  return [high >>> 0, low >>> 0];
}

export function encodeHeardSet(fromMs: number, toMs: number, keys: readonly string[]): Buffer {
  const buffer = Buffer.alloc(HEADER_BYTES + keys.length * 8);
  buffer.writeUInt32LE(FORMAT, 0);
  buffer.writeUInt32LE(keys.length, 4);
  buffer.writeDoubleLE(fromMs, 8);
  buffer.writeDoubleLE(toMs, 16);
  keys.forEach((key, i) => {
    const [high, low] = instanceKeyHash(key);
    buffer.writeUInt32LE(high, HEADER_BYTES + i * 8);
    buffer.writeUInt32LE(low, HEADER_BYTES + i * 8 + 4);
  });
  return buffer;
}

/** Undefined for anything that is not a record of this format (a reader then treats it as a gap). */
export function decodeHeardSet(buffer: Buffer): HeardSetRecord | undefined {
  if (buffer.length < HEADER_BYTES || buffer.readUInt32LE(0) !== FORMAT) return undefined;
  const count = buffer.readUInt32LE(4);
  if (buffer.length !== HEADER_BYTES + count * 8) return undefined;
  const hashes = new Uint32Array(count * 2);
  for (let i = 0; i < count * 2; i++) hashes[i] = buffer.readUInt32LE(HEADER_BYTES + i * 4);
  return { fromMs: buffer.readDoubleLE(8), toMs: buffer.readDoubleLE(16), hashes };
}

/** Where records go and come from (Redis in the gateway; a map in unit tests). */
export interface HeardSetStore {
  publish(replicaId: string, seq: number, record: Buffer): Promise<void>;
  /** The last seq a replica published; undefined if it published none (or its head expired). */
  head(replicaId: string): Promise<number | undefined>;
  read(replicaId: string, seq: number): Promise<Buffer | undefined>;
}

/**
 * How long a record is kept. Readers read every pass, so a record is needed for seconds; a minute lets a
 * reader that stalled (a long GC, a slow Redis) catch up without a gap, and bounds Redis memory to 30
 * records per replica at the default 2 s pass.
 */
export const HEARD_SET_KEEP_MS = 60_000;

/** HeardSetStore on the gateway's Redis connection (one server, Sentinel or Cluster alike). */
export class RedisHeardSets implements HeardSetStore {
  /** `namespace` e.g. `registry-gateway:v1:/registry/heard:`; includes the etcd prefix, never a brace. */
  constructor(
    private readonly client: RedisClient,
    private readonly namespace: string,
    private readonly keepMs = HEARD_SET_KEEP_MS,
  ) {}

  async publish(replicaId: string, seq: number, record: Buffer): Promise<void> {
    const results = await this.client
      .pipeline()
      .set(this.recordKey(replicaId, seq), record, 'PX', this.keepMs)
      .set(this.headKey(replicaId), String(seq), 'PX', this.keepMs)
      .exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async head(replicaId: string): Promise<number | undefined> {
    const seq = await this.client.get(this.headKey(replicaId));
    return seq === null ? undefined : Number(seq);
  }

  async read(replicaId: string, seq: number): Promise<Buffer | undefined> {
    return (await this.client.getBuffer(this.recordKey(replicaId, seq))) ?? undefined;
  }

  recordKey(replicaId: string, seq: number): string {
    return `${this.namespace}{${replicaId}}${seq}`;
  }

  headKey(replicaId: string): string {
    return `${this.namespace}{${replicaId}}head`;
  }
}

export interface HeardSetPublisherOptions {
  replicaId: string;
  /** One record per pass (LIVENESS_PASS_MS). */
  passMs: number;
  now?: () => number;
}

export interface HeardSetPublisherStats {
  published: number;
  failed: number;
  /** Epoch ms of the last record Redis accepted; 0 = none yet. */
  lastPublishedAt: number;
}

/**
 * This replica's side of the exchange: collects the keys of the instances it heard and publishes them
 * as one record per pass (the hashing is done once per pass, not per heartbeat).
 *
 * Each instance is collected once per pass: the caller passes when it last heard the instance before
 * (LivenessTable.heard), and a key already heard in this pass is not collected again. Collecting every
 * heartbeat's key string instead cost a third of the batch-heartbeat throughput (~1.8M strings held
 * per 2 s pass at ~900k heartbeats/s of the same instances, promoted to the old generation:
 * bench --scale --only throughput, 2026-12-08); once per instance per pass, the strings held are at
 * most the instances heard, which a real fleet does about once per pass anyway.
 *
 * A pass whose publish is still in flight when the next one is due is skipped, its keys stay for the
 * next record (whose window is then longer): the window in the header is what a reader trusts. A
 * failed publish loses that record: readers see the seq gap and pause (never the other way round).
 */
export class HeardSetPublisher {
  private keys: string[] = [];
  private seq = 0;
  private windowStart: number;
  private readonly passes: PeriodicPass;
  private readonly now: () => number;
  private readonly counters: HeardSetPublisherStats = { published: 0, failed: 0, lastPublishedAt: 0 };

  constructor(
    private readonly store: HeardSetStore,
    private readonly options: HeardSetPublisherOptions,
    private readonly hooks: { failed?(err: Error): void; published?(): void } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.windowStart = this.now();
    this.passes = new PeriodicPass(options.passMs, () => this.publish());
  }

  get stats(): Readonly<HeardSetPublisherStats> {
    return this.counters;
  }

  /**
   * The pod of this instance was heard; `previouslyHeardAt` is when this replica heard it before (0 =
   * never). Hot path: a comparison, and a push the first time in the pass.
   */
  heard(key: string, previouslyHeardAt: number): void {
    if (previouslyHeardAt >= this.windowStart) return;
    this.keys.push(key);
  }

  start(): void {
    this.passes.start();
  }

  stop(): void {
    this.passes.stop();
  }

  /** Publishes what was heard since the last record (the timer calls it; tests call it directly). */
  pass(): Promise<void> {
    return this.passes.runOnce();
  }

  private async publish(): Promise<void> {
    const now = this.now();
    const keys = this.keys;
    this.keys = [];
    const record = encodeHeardSet(this.windowStart, now, keys);
    this.windowStart = now;
    try {
      await this.store.publish(this.options.replicaId, ++this.seq, record);
      this.counters.published++;
      this.counters.lastPublishedAt = now;
      this.hooks.published?.();
    } catch (err) {
      this.counters.failed++;
      this.hooks.failed?.(err as Error);
    }
  }
}

/** A hash as one Map key: the high 32 bits and 21 of the low (53 bits, exact in a double). */
function mapKey(high: number, low: number): number {
  return high * 0x200000 + (low >>> 11);
}

/** What the reader knows about one other replica's records. */
interface Coverage {
  /** The next seq to read. */
  nextSeq: number;
  /** Start of the contiguous run of records read up to `to` (-Infinity: since the replica's first record). */
  from: number;
  /** End of the last record read; 0 = none yet. */
  to: number;
}

export interface HeardSetReaderOptions {
  selfId: string;
  passMs: number;
  /** How long a heard mark is kept: the longest instance TTL (300 s). */
  keepMs: number;
}

/** The answer to "may this instance be deleted now?", with the reason when not. */
export type ExpiryVerdict = { expire: true } | { expire: false; reason: 'heard' | 'gap' };

/**
 * The reading side of the exchange (used by the shared-lease release's expiry sweep; tested here so the
 * rule is fixed before the sweep exists). Once per pass, `refresh()` reads every new record of every
 * present replica; `verdict()` then answers from memory:
 *
 * an instance silent locally since `localLastHeard` may be deleted at `now` only if no record read names
 * it after `now - ttl`, AND every present replica's records cover `[now - ttl, now - 2 passes]` without a
 * gap (the last pass or two may not be published yet: a pod heard only there was silent for a TTL
 * before, which is the expiry rule anyway). A missing record, a replica not read yet or Redis down is a
 * gap: the verdict is `gap` (pause), never `expire`. Memory: one Map entry per instance heard within
 * `keepMs` (hashes merged over replicas: only the latest mark matters), and three numbers per replica.
 */
export class HeardSetReader {
  private readonly heardAt = new Map<number, number>();
  private readonly coverage = new Map<string, Coverage>();
  private present: readonly string[] = [];
  private prunedAt = 0;

  constructor(
    private readonly store: HeardSetStore,
    private readonly options: HeardSetReaderOptions,
  ) {}

  /** Reads what the present replicas published since the last refresh. A replica that left is forgotten. */
  async refresh(present: readonly string[], now: number): Promise<void> {
    this.present = present.filter((id) => id !== this.options.selfId);
    for (const id of this.coverage.keys()) if (!this.present.includes(id)) this.coverage.delete(id);
    await Promise.all(this.present.map((id) => this.readReplica(id).catch(() => undefined)));
    this.prune(now);
  }

  verdict(key: string, ttlMs: number, localLastHeard: number, now: number): ExpiryVerdict {
    const [high, low] = instanceKeyHash(key);
    const lastHeard = Math.max(localLastHeard, this.heardAt.get(mapKey(high, low)) ?? 0);
    if (lastHeard > now - ttlMs) return { expire: false, reason: 'heard' };
    for (const id of this.present) {
      const c = this.coverage.get(id);
      if (!c || c.from > now - ttlMs || c.to < now - 2 * this.options.passMs) return { expire: false, reason: 'gap' };
    }
    return { expire: true };
  }

  private async readReplica(id: string): Promise<void> {
    let c = this.coverage.get(id);
    if (!c) {
      const head = await this.store.head(id);
      if (head === undefined) return;
      // Records are kept HEARD_SET_KEEP_MS: start with the oldest that may still be there.
      const first = Math.max(1, head - Math.floor(HEARD_SET_KEEP_MS / this.options.passMs) + 1);
      c = { nextSeq: first, from: Infinity, to: 0 };
      this.coverage.set(id, c);
    }
    const head = await this.store.head(id);
    if (head === undefined) return;
    for (let seq = c.nextSeq; seq <= head; seq++) {
      const buffer = await this.store.read(id, seq);
      const record = buffer && decodeHeardSet(buffer);
      c.nextSeq = seq + 1;
      if (!record) {
        // A gap: coverage starts again with the next record found.
        c.from = Infinity;
        continue;
      }
      if (c.from === Infinity) c.from = seq === 1 ? -Infinity : record.fromMs;
      c.to = record.toMs;
      for (let i = 0; i < record.hashes.length; i += 2) {
        const k = mapKey(record.hashes[i], record.hashes[i + 1]);
        if ((this.heardAt.get(k) ?? 0) < record.toMs) this.heardAt.set(k, record.toMs);
      }
    }
  }

  /** Every tenth of `keepMs` (not every pass: it walks every mark). */
  private prune(now: number): void {
    if (now - this.prunedAt < this.options.keepMs / 10) return;
    this.prunedAt = now;
    for (const [k, at] of this.heardAt) if (at < now - this.options.keepMs) this.heardAt.delete(k);
  }
}
