import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { GRPCUnavailableError } from 'etcd3';
import { Backoff } from '@app/concurrency';
import { EtcdConnection, EtcdObserver, EtcdTlsOptions } from '../etcd-connection';
import { withEtcdAction } from '../etcd-errors';
import { closeWorker, loadWorker, WORKER_RESTART_BACKOFF } from '../worker-threads/load-worker';
import { serveTokenRequest } from '../worker-threads/relayed-connections';
import { GrantRequests } from './grant-batching';
import { FromGrantWorker, LeaseGrantWorkerData, ToGrantWorker } from './lease-grant-worker';

/** Where the registrar gets a new lease: the store on this thread, or a worker thread. */
export interface LeaseGranter {
  /** A new lease of `ttlSeconds`; rejects with etcd3's typed error (e.g. GRPCUnavailableError). */
  grant(ttlSeconds: number): Promise<string>;
}

export interface WorkerLeaseGranterOptions {
  /** The HTTP thread's pooled connections: the worker uses their tokens (no Authenticate of its own). */
  connections: readonly EtcdConnection[];
  /** Endpoints of each pooled connection, in its preference order (the worker's channels mirror them). */
  endpointsPerConnection: string[][];
  tls?: EtcdTlsOptions;
  requestTimeoutMs: number;
  /** Grants while no worker runs (starting, restarting after a crash): on this thread, as before. */
  fallback: LeaseGranter;
  /** The worker's etcd calls are counted here too, so request metrics stay truthful. */
  observer?: EtcdObserver;
  log?(level: 'warn' | 'info' | 'error', message: string): void;
}

export interface LeaseGrantStats {
  /** The worker runs and takes grants. */
  workerUp: boolean;
  /** Grants answered by the worker (ok or error). */
  inWorker: number;
  /** Of those, the ones its hand-framed grant sessions made (LeaseGrantSession); the rest went through grpc-js. */
  bySession: number;
  /** Grants made on this thread because no worker was running. */
  onThisThread: number;
  inFlight: number;
  restarts: number;
  /**
   * Time the current worker's loop was busy since it started, ms (event-loop utilisation, wall clock:
   * on a loaded machine it includes time the thread waited for a core, so it bounds its CPU from above).
   */
  workerActiveMs: number;
}

/**
 * Makes LeaseGrant calls on a worker thread. Why (bench/results/registration-rate.md): the HTTP thread
 * is CPU-bound while registering, ~25 % of it in grpc-js/protobufjs, most of that the one LeaseGrant
 * unary call per registration (etcd has no multi-grant and every instance needs its own lease). Here
 * the grants asked for in one turn cost the HTTP thread one postMessage, and the answers of one worker
 * turn one message back (GrantRequests, GrantAnswers).
 *
 * Why its own worker and not the lease engine's (measured, `register-rate` at factor 1, 20,000
 * registrations, all three threads CPU-profiled): the grant worker's loop was busy 45-65 % of every
 * 0.5 s of the registration window (~0.4 ms of grpc-js, HTTP/2 and GC per grant), the lease engine's
 * 0-2 %. That engine worker exists so that nothing but renewals runs on its loop: grpc-js writes a
 * keepalive stream's messages one per event-loop turn, and turns carrying ~10 ms of other work cut a
 * stream to ~160 renewals/s (bench/results/keepalive-starvation.md). Grants there would lengthen its
 * turns exactly during a registration storm, when heartbeating pods' leases must not lapse. A second
 * worker costs one thread and ETCD_POOL_SIZE more channels (no Authenticate: tokens are relayed).
 *
 * No grant hangs: a dead or closed worker fails its unanswered grants as "unavailable" (503, retryable;
 * a lease it may have granted meanwhile has no key and expires alone), a stuck one fails them at their
 * deadline. While no worker runs, grants go to `fallback`.
 */
export class WorkerLeaseGranter implements LeaseGranter {
  private worker: Worker | undefined;
  private ready = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readyWaiters: Array<() => void> = [];
  private readonly requests: GrantRequests;
  private readonly sweep: NodeJS.Timeout;
  private answered = 0;
  private answeredBySession = 0;
  private onThisThread = 0;
  private readonly restarts = new Backoff(WORKER_RESTART_BACKOFF);
  private failures = 0;

  constructor(private readonly options: WorkerLeaseGranterOptions) {
    // A stale token costs the worker a second call (EtcdConnection.exec retries once), and the token
    // itself comes from this thread: two call deadlines and a margin.
    const deadlineMs = 2 * options.requestTimeoutMs + 1_000;
    this.requests = new GrantRequests((items) => this.worker?.postMessage({ t: 'grant', items } satisfies ToGrantWorker), deadlineMs);
    this.sweep = setInterval(() => this.requests.expire(), 1_000);
    this.sweep.unref();
  }

  /** Starts the worker; resolves once it takes grants (until then, and if it never does, `fallback` makes them). */
  start(timeoutMs = 60_000): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.worker ??= this.spawn();
    if (this.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the lease-grant worker did not start within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  grant(ttlSeconds: number): Promise<string> {
    if (this.closing) return Promise.reject(new GRPCUnavailableError('the gateway is shutting down: no new leases'));
    if (!this.ready) {
      this.onThisThread++;
      return this.options.fallback.grant(ttlSeconds);
    }
    return this.requests.request(ttlSeconds).catch((err: unknown) => {
      throw withEtcdAction(err, `granting a ${ttlSeconds} s lease`);
    });
  }

  stats(): LeaseGrantStats {
    return {
      workerUp: this.ready,
      inWorker: this.answered,
      bySession: this.answeredBySession,
      onThisThread: this.onThisThread,
      inFlight: this.requests.inFlight,
      restarts: this.failures,
      workerActiveMs: this.worker && this.ready ? this.worker.performance.eventLoopUtilization().active : 0,
    };
  }

  /** Stops the worker (nothing is revoked); unanswered grants fail as unavailable. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.ready = false;
    clearInterval(this.sweep);
    this.requests.failAll(new GRPCUnavailableError('the lease-grant worker was closed before etcd answered'));
    const worker = this.worker;
    if (!worker) return (this.closed = Promise.resolve());
    this.closed = closeWorker(worker, { t: 'close' } satisfies ToGrantWorker);
    return this.closed;
  }

  private spawn(): Worker {
    const data: LeaseGrantWorkerData = {
      kind: 'lease-grants',
      endpointsPerConnection: this.options.endpointsPerConnection,
      tls: this.options.tls,
      requestTimeoutMs: this.options.requestTimeoutMs,
    };
    const worker = loadWorker(path.join(__dirname, 'lease-grant-worker'), data);
    worker.on('message', (message: FromGrantWorker) => this.onMessage(worker, message));
    worker.on('error', (err) => this.options.log?.('error', `lease-grant worker failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.ready = false;
      this.requests.failAll(new GRPCUnavailableError(`the lease-grant worker exited (code ${code}) before etcd answered`));
      if (this.closing) return;
      this.failures++;
      // Grants go to the fallback meanwhile; a worker that keeps failing is restarted with growing
      // pauses (up to 10 s), not in a hot loop.
      const delayMs = this.restarts.next();
      this.options.log?.('error', `lease-grant worker exited (code ${code}); grants run on the HTTP thread until it restarts in ${delayMs} ms`);
      setTimeout(() => {
        if (!this.closing && !this.worker) this.worker = this.spawn();
      }, delayMs).unref();
    });
    // The worker must not keep a process alive on its own (tests, a failed start): the HTTP server does.
    worker.unref();
    return worker;
  }

  private onMessage(worker: Worker, message: FromGrantWorker): void {
    if (serveTokenRequest(this.options.connections, message, (answer) => worker.postMessage(answer satisfies ToGrantWorker))) return;
    switch (message.t) {
      case 'granted': {
        this.answered += message.results.length;
        this.answeredBySession += message.bySession;
        this.requests.answer(message.results);
        const observer = this.options.observer;
        if (observer?.requestCompleted) for (const [method, result, count] of message.calls) for (let i = 0; i < count; i++) observer.requestCompleted(method, result);
        return;
      }
      case 'ready':
        if (this.closing || this.worker !== worker) return;
        this.ready = true;
        this.restarts.reset();
        for (const done of this.readyWaiters.splice(0)) done();
        return;
      case 'closed':
        return;
    }
  }
}
