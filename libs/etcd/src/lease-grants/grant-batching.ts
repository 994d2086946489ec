import { GRPCDeadlineExceededError } from 'etcd3';
import { decodeEtcdError, WireError } from '../worker-threads/wire-errors';

/** One grant asked of the worker: [request id, TTL in seconds]. */
export type GrantItem = [id: number, ttlSeconds: number];
/** One answer: [request id, the lease id] or [request id, the etcd error]. */
export type GrantResult = [id: number, outcome: string | WireError];
/** etcd calls the worker completed since its last answer, for the HTTP thread's request counters. */
export type CompletedCalls = Array<[method: string, result: 'ok' | 'error', count: number]>;

/** Runs `flush` once the current event-loop turn's work is done (after its I/O callbacks). */
export type TurnScheduler = (flush: () => void) => void;
const atEndOfTurn: TurnScheduler = (flush) => setImmediate(flush);

interface PendingGrant {
  resolve(leaseId: string): void;
  reject(err: Error): void;
  deadline: number;
}

/**
 * The HTTP thread's side of grants made by another thread: the grants asked for in one event-loop
 * turn leave as ONE message (a burst of registrations read from many sockets in one poll phase costs
 * one postMessage, not one each), and answers are matched back by id. A grant never hangs: the
 * thread's exit fails all of them (failAll) and expire() fails those past their deadline.
 */
export class GrantRequests {
  private nextId = 1;
  private queued: GrantItem[] = [];
  private readonly pending = new Map<number, PendingGrant>();

  constructor(
    private readonly send: (items: GrantItem[]) => void,
    private readonly deadlineMs: number,
    private readonly schedule: TurnScheduler = atEndOfTurn,
    private readonly now: () => number = Date.now,
  ) {}

  /** Grants unanswered (queued or sent). */
  get inFlight(): number {
    return this.pending.size;
  }

  request(ttlSeconds: number): Promise<string> {
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: this.now() + this.deadlineMs });
      if (this.queued.push([id, ttlSeconds]) === 1) this.schedule(() => this.flush());
    });
  }

  /** Settles the grants named in `results`; ids no longer pending (expired, failed) are ignored. */
  answer(results: readonly GrantResult[]): void {
    for (const [id, outcome] of results) {
      const grant = this.pending.get(id);
      if (!grant) continue;
      this.pending.delete(id);
      if (typeof outcome === 'string') grant.resolve(outcome);
      else grant.reject(decodeEtcdError(outcome));
    }
  }

  /** Fails every unanswered grant with `err` (the thread died or was closed). */
  failAll(err: Error): void {
    this.queued = [];
    const grants = [...this.pending.values()];
    this.pending.clear();
    for (const grant of grants) grant.reject(err);
  }

  /** Fails the grants whose deadline has passed (a stuck thread); returns how many. */
  expire(now = this.now()): number {
    let expired = 0;
    // Ids are issued in order with one fixed deadline, so the oldest come first.
    for (const [id, grant] of this.pending) {
      if (grant.deadline > now) break;
      this.pending.delete(id);
      grant.reject(new GRPCDeadlineExceededError(`lease grant not answered by the grant worker within ${this.deadlineMs} ms`));
      expired++;
    }
    if (expired) this.queued = this.queued.filter(([id]) => this.pending.has(id));
    return expired;
  }

  private flush(): void {
    const items = this.queued;
    this.queued = [];
    if (items.length) this.send(items);
  }
}

/**
 * The worker's side: answers (and the etcd calls counted for them) collected during one turn of the
 * worker's loop leave as ONE message, so the HTTP thread handles one message per worker turn.
 */
export class GrantAnswers {
  private results: GrantResult[] = [];
  private calls = new Map<string, number>();
  private bySession = 0;
  private flushQueued = false;

  constructor(
    /** `bySession`: how many of `results` the worker's grant sessions made (the rest went through grpc-js). */
    private readonly send: (results: GrantResult[], calls: CompletedCalls, bySession: number) => void,
    private readonly schedule: TurnScheduler = atEndOfTurn,
  ) {}

  add(id: number, outcome: string | WireError, bySession = false): void {
    this.results.push([id, outcome]);
    if (bySession) this.bySession++;
    this.queueFlush();
  }

  /** An etcd call finished (EtcdObserver.requestCompleted): the HTTP thread's counters learn it with the next answers. */
  counted(method: string, result: 'ok' | 'error'): void {
    const key = `${method}\u0000${result}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    this.queueFlush();
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.schedule(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    const results = this.results;
    const calls: CompletedCalls = [...this.calls].map(([key, count]) => {
      const [method, result] = key.split('\u0000') as [string, 'ok' | 'error'];
      return [method, result, count];
    });
    const bySession = this.bySession;
    this.results = [];
    this.calls = new Map();
    this.bySession = 0;
    if (results.length || calls.length) this.send(results, calls, bySession);
  }
}
