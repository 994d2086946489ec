import { QueueFullError } from '@app/concurrency';
import { isEtcdUnavailable } from './etcd-errors';
import type { StoredInstance } from './registry-store';

/** One key to write under its lease. */
export interface BatchedPut {
  key: string;
  value: string;
  leaseId: string;
}

/** What one put did: etcd's revision after it and the key-value it replaced (none = created). */
export interface PutOutcome {
  revision: string;
  previous?: StoredInstance;
}

/**
 * Where batches go (RegistryStore.putMany). Every request is a Txn, a lone put too: etcd checks write
 * permission on every key already on the lease for a plain Put with a lease (not for a Txn's puts before
 * 3.4.44/3.5.30/3.6.11), which on a shared lease of 1,000 keys costs ~1 ms per Put (docs/shared-leases.md).
 */
export interface PutSink {
  /** All items in ONE etcd Txn (atomic: one invalid lease fails the whole Txn); outcomes in item order. */
  putMany(items: readonly BatchedPut[]): Promise<PutOutcome[]>;
}

export interface PutBatcherOptions {
  /**
   * Puts per Txn at most. etcd refuses a Txn with more operations than its --max-txn-ops (128 by
   * default), so this must stay at or below the cluster's setting.
   */
  maxBatchSize: number;
  /** Key + value bytes per Txn at most: etcd refuses requests over --max-request-bytes (1.5 MiB by default). */
  maxBatchBytes: number;
  /**
   * Errors that would fail every single Put just the same (default: etcd unreachable): the batch
   * fails at once instead of being re-sent item by item.
   */
  failsWholeBatch?: (err: unknown) => boolean;
  /**
   * Txns in flight at most: puts arriving while that many are out wait for one to come back and go
   * out together (with shared leases a registration needs no grant round-trip, so without this each
   * request of a steady stream would be a Txn of its own). Unbounded by default.
   */
  maxInFlight?: number;
  /**
   * Puts waiting (not sent) at most while maxInFlight Txns are out: beyond it a put is refused at once
   * with QueueFullError (the registrar answers 503 overloaded + Retry-After) instead of piling up in
   * memory while etcd is slow. Unbounded by default.
   */
  maxWaiting?: number;
  /** Runs `flush` once the current turn's callers have queued their puts; setImmediate by default. */
  schedule?: (flush: () => void) => void;
}

export interface PutBatcherStats {
  /** Requests sent to etcd: Txns, one-put Txns included (those of a fallback too). */
  requests: number;
  /** Puts asked for. */
  puts: number;
  /** Txns that failed for one item's sake and were re-sent one put per Txn. */
  fallbacks: number;
}

interface Waiting {
  item: BatchedPut;
  bytes: number;
  resolve(outcome: PutOutcome): void;
  reject(err: unknown): void;
}

/**
 * Micro-batches the Puts of concurrent registrations into one etcd Txn. Every registration pays a
 * LeaseGrant and a Put; the Puts of the registrations whose grants came back in the same event-loop
 * turn go to etcd as one request (one gRPC call, one raft entry, one watch response) instead of one
 * each. A put waits at most until the end of the current turn (setImmediate), so a lone registration
 * is sent at once, as a Txn of one put (see PutSink for why never a plain Put).
 *
 * A Txn is all-or-nothing: if it fails for a reason that concerns single items (a lease that expired
 * meanwhile, a value etcd refuses), its items are re-sent one per Txn so that each caller gets its own
 * outcome and one bad item never fails its neighbours. Only "etcd is unreachable" (or what
 * `failsWholeBatch` names) fails the whole batch at once: single puts would fail the same way, later.
 *
 * One key appears at most once per Txn (etcd refuses duplicate keys in a Txn): a second put of a key
 * already waiting starts a new batch.
 */
export class PutBatcher {
  private waiting: Waiting[] = [];
  private waitingKeys = new Set<string>();
  private waitingBytes = 0;
  private scheduled = false;
  private inFlight = 0;
  /** Batches closed and waiting for a Txn slot (maxInFlight), oldest first. */
  private sealed: Waiting[][] = [];
  private readonly schedule: (flush: () => void) => void;
  private readonly failsWholeBatch: (err: unknown) => boolean;
  private readonly counters: PutBatcherStats = { requests: 0, puts: 0, fallbacks: 0 };

  constructor(
    private readonly sink: PutSink,
    private readonly options: PutBatcherOptions,
  ) {
    if (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1) throw new Error(`batch size must be a positive integer: ${options.maxBatchSize}`);
    this.schedule = options.schedule ?? ((flush) => setImmediate(flush));
    this.failsWholeBatch = options.failsWholeBatch ?? isEtcdUnavailable;
  }

  get stats(): Readonly<PutBatcherStats> {
    return this.counters;
  }

  /** Puts not sent yet (waiting for a Txn slot or for the end of the turn). */
  get queued(): number {
    return this.waitingCount();
  }

  put(item: BatchedPut): Promise<PutOutcome> {
    const maxWaiting = this.options.maxWaiting;
    if (maxWaiting !== undefined && this.inFlight >= (this.options.maxInFlight ?? Infinity) && this.waitingCount() >= maxWaiting) {
      return Promise.reject(new QueueFullError(maxWaiting));
    }
    const bytes = Buffer.byteLength(item.key) + Buffer.byteLength(item.value);
    if (this.waitingKeys.has(item.key) || (this.waiting.length > 0 && this.waitingBytes + bytes > this.options.maxBatchBytes)) this.seal();
    this.counters.puts++;
    return new Promise<PutOutcome>((resolve, reject) => {
      this.waiting.push({ item, bytes, resolve, reject });
      this.waitingKeys.add(item.key);
      this.waitingBytes += bytes;
      if (this.waiting.length >= this.options.maxBatchSize) {
        this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /**
   * Sends what is waiting now (also called by the scheduled flush); with maxInFlight Txns out, the
   * batches wait for one to come back.
   */
  flush(): void {
    this.seal();
    while (this.sealed.length > 0 && this.inFlight < (this.options.maxInFlight ?? Infinity)) this.send(this.sealed.shift()!);
  }

  private waitingCount(): number {
    let n = this.waiting.length;
    for (const batch of this.sealed) n += batch.length;
    return n;
  }

  /** Closes the batch being filled (a full one, a key already in it, the byte bound). */
  private seal(): void {
    if (this.waiting.length === 0) return;
    this.sealed.push(this.waiting);
    this.waiting = [];
    this.waitingKeys = new Set();
    this.waitingBytes = 0;
  }

  private send(batch: Waiting[]): void {
    if (batch.length === 1) {
      this.sendOne(batch[0]);
      return;
    }
    this.counters.requests++;
    this.inFlight++;
    this.sink.putMany(batch.map((w) => w.item)).finally(() => this.returned()).then(
      (outcomes) => batch.forEach((w, i) => w.resolve(outcomes[i])),
      (err) => {
        if (this.failsWholeBatch(err)) {
          for (const w of batch) w.reject(err);
          return;
        }
        this.counters.fallbacks++;
        for (const w of batch) this.sendOne(w);
      },
    );
  }

  private sendOne(w: Waiting): void {
    this.counters.requests++;
    this.inFlight++;
    this.sink
      .putMany([w.item])
      .finally(() => this.returned())
      .then((outcomes) => w.resolve(outcomes[0]), w.reject);
  }

  /** A Txn came back: what waited for it goes out now. */
  private returned(): void {
    this.inFlight--;
    // Bounded: what arrived during the round trip goes out now. Unbounded, nothing ever waited.
    if (this.options.maxInFlight !== undefined) this.flush();
  }
}
