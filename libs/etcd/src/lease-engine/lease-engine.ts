import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Backoff } from '@app/concurrency';
import { EtcdConnection, EtcdTlsOptions } from '../etcd-connection';
import { closeWorker, loadWorker, WORKER_RESTART_BACKOFF } from '../worker-threads/load-worker';
import { serveTokenRequest } from '../worker-threads/relayed-connections';
import { ENGINE_STATS, ENGINE_STATS_LENGTH, LeaseSlots } from './lease-slots';
import { LeaseTable, LeaseTableHooks, RenewalChannel } from './lease-table';
import { FromWorker, LeaseEngineWorkerData, LedgerData, OP_REPLACE, OP_TRACK, OP_UNTRACK, ToWorker } from './lease-engine-worker';

export interface LeaseEngineOptions {
  /** The HTTP thread's pooled connections: the worker uses their tokens (no Authenticate of its own). */
  connections: readonly EtcdConnection[];
  /** Endpoints of each pooled connection, in its preference order (the worker's channels mirror them). */
  endpointsPerConnection: string[][];
  tls?: EtcdTlsOptions;
  requestTimeoutMs: number;
  /** Scheduler pass period, ms (RENEW_INTERVAL_MS). */
  tickMs: number;
  /** Renewals written and unanswered at once, over all streams. */
  maxInFlight?: number;
  /** Replicas de-duplicate renewals through this Redis ledger (see RenewalLedger); absent = each renews alone. */
  ledger?: LedgerData;
  /** Keep renewing the leases of a mass of pods that go silent at once (see SelfPreservation). */
  selfPreservation?: { threshold: number; maxMs: number };
}

export interface LeaseEngineHooks extends LeaseTableHooks {
  log?(level: 'warn' | 'info' | 'error', message: string): void;
}

/** What the worker reports (see ENGINE_STATS); read from shared memory, no I/O. */
export interface LeaseEngineStats {
  sent: number;
  confirmed: number;
  lost: number;
  /** Due renewals skipped because another replica had just renewed the lease (shared ledger). */
  deduplicated: number;
  /** Self-preservation holds the leases of silent pods, and how many. */
  selfPreservation: boolean;
  preservedLeases: number;
  backlog: number;
  /** Age of the oldest due, unconfirmed renewal, ms; 0 = none. */
  oldestDueMs: number;
  liveStreams: number;
  totalStreams: number;
  lastAnswerAt: number;
  tracked: number;
  inFlight: number;
  lastPassMs: number;
  /** Age of the worker's last scheduler pass, ms: a stuck or dead worker shows as a large value. */
  lastPassAgoMs: number;
  /** The worker's own Redis client (the renewal ledger): connected, not, or no ledger (RENEWAL_DEDUP=false). */
  ledgerRedis: 'up' | 'down' | 'off';
}

/**
 * The lease engine: the LeaseTable on this (HTTP) thread, the keepalive streams and the
 * RenewalScheduler in a worker thread.
 *
 * Why a worker (measured, bench/results/keepalive-starvation.md): grpc-js writes a stream's messages
 * one at a time, each waiting for the previous HTTP/2 write to complete, which takes an event-loop
 * turn. A thread whose loop does 10 ms of request work per turn therefore delivers only ~100-200
 * renewals/s on a stream, and leases of heartbeating pods lapse exactly when the gateway is busiest.
 * The worker's loop does nothing but renewals, so its turns stay short whatever the HTTP load, and
 * heartbeat marks reach it through shared memory, not messages.
 *
 * A worker that dies is restarted and told every lease again; leases are never revoked by close().
 */
export class LeaseEngine implements RenewalChannel {
  readonly table: LeaseTable;
  private readonly slots = new LeaseSlots();
  private readonly statsBuffer = new SharedArrayBuffer(ENGINE_STATS_LENGTH * 8);
  private readonly stats = new Float64Array(this.statsBuffer);
  private worker: Worker | undefined;
  private ops: Array<[0, number, string, number, number] | [1, number] | [2, number, string, number]> = [];
  private flushQueued = false;
  private closing = false;
  private ready = false;
  private readonly restarts = new Backoff(WORKER_RESTART_BACKOFF);
  private readyWaiters: Array<() => void> = [];
  private closed: Promise<void> | undefined;

  constructor(
    private readonly options: LeaseEngineOptions,
    private readonly hooks: LeaseEngineHooks = {},
  ) {
    this.table = new LeaseTable(this.slots, this, hooks);
  }

  /**
   * Starts the worker and resolves once it schedules renewals (loading it takes a few hundred ms, more
   * on a loaded machine): the gateway must not take registrations whose leases nobody renews yet.
   */
  start(timeoutMs = 60_000): Promise<void> {
    this.worker = this.spawn();
    return this.whenReady(timeoutMs);
  }

  /**
   * Resolves true once every stream is open on a connected channel, false after `timeoutMs` (etcd
   * unreachable at start is not fatal: the streams keep reopening with backoff).
   */
  async whenStreamsLive(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    // The worker's channels connect on first use; its stats say when (a few ms, no message needed).
    while (this.stats[ENGINE_STATS.liveStreams] < this.options.connections.length) {
      if (Date.now() >= deadline || this.closing) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  }

  private whenReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the lease engine worker did not start within ${timeoutMs} ms`)), timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The highest etcd revision the worker's keepalive streams have seen (0 before the first answer). */
  get revisionSeen(): number {
    return this.stats[ENGINE_STATS.revisionSeen];
  }

  /** How long the oldest due renewal has waited unconfirmed, ms (admission control reads it per registration: no snapshot object). */
  oldestDueMs(now = Date.now()): number {
    const oldest = this.stats[ENGINE_STATS.oldestDueSince];
    return oldest ? Math.max(0, now - oldest) : 0;
  }

  snapshot(now = Date.now()): LeaseEngineStats {
    const s = this.stats;
    const lastPassAt = s[ENGINE_STATS.lastPassAt];
    return {
      sent: s[ENGINE_STATS.sent],
      confirmed: s[ENGINE_STATS.confirmed],
      lost: s[ENGINE_STATS.lost],
      deduplicated: s[ENGINE_STATS.deduplicated],
      selfPreservation: s[ENGINE_STATS.selfPreservation] === 1,
      preservedLeases: s[ENGINE_STATS.preservedLeases],
      backlog: s[ENGINE_STATS.backlog],
      oldestDueMs: this.oldestDueMs(now),
      liveStreams: s[ENGINE_STATS.liveStreams],
      totalStreams: this.options.connections.length,
      lastAnswerAt: s[ENGINE_STATS.lastAnswerAt],
      tracked: s[ENGINE_STATS.tracked],
      inFlight: s[ENGINE_STATS.inFlight],
      lastPassMs: s[ENGINE_STATS.lastPassMs],
      lastPassAgoMs: lastPassAt ? Math.max(0, now - lastPassAt) : 0,
      ledgerRedis: !this.options.ledger ? 'off' : s[ENGINE_STATS.ledgerRedisUp] === 1 ? 'up' : 'down',
    };
  }

  addSegment(buffer: SharedArrayBuffer): void {
    this.flush();
    this.post({ t: 'segment', buffer });
  }

  track(slot: number, leaseId: string, ttlMs: number, renewedAt: number): void {
    this.queue([OP_TRACK, slot, leaseId, ttlMs, renewedAt]);
  }

  untrack(slot: number): void {
    this.queue([OP_UNTRACK, slot]);
  }

  replace(slot: number, leaseId: string, renewedAt: number): void {
    this.queue([OP_REPLACE, slot, leaseId, renewedAt]);
  }

  /** Stops the worker (streams end, nothing is revoked: any replica renews these leases next). */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    const worker = this.worker;
    if (!worker) return (this.closed = Promise.resolve());
    this.flush();
    this.closed = closeWorker(worker, { t: 'close' } satisfies ToWorker);
    return this.closed;
  }

  private queue(op: [0, number, string, number, number] | [1, number] | [2, number, string, number]): void {
    this.ops.push(op);
    if (this.flushQueued) return;
    this.flushQueued = true;
    // One message per task, however many instances it touched (a watch batch, a burst of registrations).
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    if (!this.ops.length) return;
    const ops = this.ops;
    this.ops = [];
    this.post({ t: 'ops', ops });
  }

  private post(message: ToWorker): void {
    this.worker?.postMessage(message);
  }

  private spawn(): Worker {
    const data: LeaseEngineWorkerData = {
      kind: 'lease-engine',
      endpointsPerConnection: this.options.endpointsPerConnection,
      tls: this.options.tls,
      requestTimeoutMs: this.options.requestTimeoutMs,
      tickMs: this.options.tickMs,
      maxInFlight: this.options.maxInFlight ?? 10_000,
      segments: [...this.slots.buffers],
      stats: this.statsBuffer,
      ledger: this.options.ledger,
      selfPreservation: this.options.selfPreservation,
    };
    const worker = loadWorker(path.join(__dirname, 'lease-engine-worker'), data);
    worker.on('message', (message: FromWorker) => this.onMessage(worker, message));
    worker.on('error', (err) => this.hooks.log?.('error', `lease engine worker failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (this.closing || this.worker !== worker) return;
      // Renewals stop while no worker runs: restart soon and tell it every lease again. A worker that
      // keeps failing is restarted with growing pauses (up to 10 s), not in a hot loop.
      const delayMs = this.restarts.next();
      this.hooks.log?.('error', `lease engine worker exited (code ${code}); restarting it in ${delayMs} ms`);
      this.worker = undefined;
      const timer = setTimeout(() => {
        if (this.closing) return;
        this.worker = this.spawn();
        this.ops = [];
        this.table.replayTo(this);
      }, delayMs);
      timer.unref();
    });
    // The worker must not keep a process alive on its own (tests, a failed start): the HTTP server does.
    worker.unref();
    return worker;
  }

  private onMessage(worker: Worker, message: FromWorker): void {
    if (serveTokenRequest(this.options.connections, message, (answer) => worker.postMessage(answer satisfies ToWorker))) return;
    switch (message.t) {
      case 'released':
        this.table.onReleased(message.slots);
        return;
      case 'silent':
        this.table.onSilent(message.slots, Date.now());
        return;
      case 'log':
        this.hooks.log?.(message.level, message.message);
        return;
      case 'ready':
        this.ready = true;
        this.restarts.reset();
        for (const done of this.readyWaiters.splice(0)) done();
        return;
      case 'closed':
        return;
    }
  }
}
