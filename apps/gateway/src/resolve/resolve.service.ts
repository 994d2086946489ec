import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { filterInstances, InstanceFilter, ServiceView, WaitOutcome } from '@app/cache';
import { InstanceRegistrar } from '@app/etcd';
import { InstanceRecord, InstanceStatus, RateLimitedError, ResolvedInstance } from '@app/registry';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { RegistryRuntimeProvider } from '../etcd/registry-runtime.provider';
import { RegistryReads, RegistryRuntime } from '@app/runtime';
import { BlockingQueryOutcome, GatewayMetrics } from '../metrics/gateway-metrics';
import { EncodedAnswerCache } from './encoded-answers';
import { BlockingQuery } from './resolve-query.pipe';

export interface ResolveAnswer {
  service: string;
  revision: string;
  stale: boolean;
  instances: ResolvedInstance[];
}

export interface ServiceListAnswer {
  revision: string;
  stale: boolean;
  services: Array<{ service: string; instances: number }>;
}

/** An answer and the index a blocking query passes back (X-Registry-Index). */
export interface IndexedAnswer<T> {
  index: string;
  answer: T;
}

/**
 * A full replica asks for a retry later: a held query lasts until a change or its wait, so slots
 * rarely free up within a second, and thousands of clients retrying at once must not spin.
 */
const BLOCKING_RETRY_AFTER_SECONDS = 5;

const OUTCOME_LABELS: Record<WaitOutcome, BlockingQueryOutcome> = { changed: 'changed', timeout: 'timeout', aborted: 'disconnected', closed: 'shutdown' };

/**
 * Encoded resolve answers kept (see EncodedAnswerCache): far more than the services x filters a
 * replica serves in practice, and a bound on what a client cycling through queries can pin.
 */
const ENCODED_ANSWERS_KEPT = 2_000;
const ENCODED_ANSWER_BYTES = 32 * 1024 * 1024;

function answerOf(view: ServiceView, filter: InstanceFilter): ResolveAnswer {
  return { service: view.service, revision: String(view.revision), stale: view.stale, instances: filterInstances(view.instances, filter) };
}

/** How long a PATCH waits for its own change to come back through the watch (read-your-writes). */
const OWN_WRITE_WAIT_MS = 1_000;

/**
 * The resolve path over the runtime's read model and registry watch (both built and owned by
 * RegistryRuntime in @app/runtime): answers, blocking queries, PATCH with read-your-writes. Every
 * answer comes from memory; nothing here reads etcd.
 */
@Injectable()
export class ResolveService implements OnModuleDestroy {
  private readonly runtime: RegistryRuntime;
  private readonly reads: RegistryReads;
  private readonly registrar: InstanceRegistrar;
  private readonly encodedAnswers = new EncodedAnswerCache(ENCODED_ANSWERS_KEPT, ENCODED_ANSWER_BYTES);
  private heldQueries = 0;
  private allAnswered: (() => void) | undefined;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    provider: RegistryRuntimeProvider,
    private readonly blockingMetrics: GatewayMetrics,
  ) {
    this.runtime = provider.runtime;
    ({ reads: this.reads, registrar: this.registrar } = provider.runtime);
  }

  /**
   * Shutdown, before the watch closes (beforeApplicationShutdown) and before the HTTP server waits
   * for in-flight requests: every held blocking query is answered now with the current view, which
   * the watch still confirms. Later blocking queries are answered at once.
   */
  async onModuleDestroy(): Promise<void> {
    const answered = this.heldQueries ? new Promise<void>((resolve) => (this.allAnswered = resolve)) : Promise.resolve();
    this.runtime.answerHeldQueries();
    let timer: NodeJS.Timeout | undefined;
    // Bounded, though every answer comes from memory: a client slow to take its answer must not hold shutdown.
    await Promise.race([answered, new Promise((resolve) => (timer = setTimeout(resolve, this.config.ETCD_REQUEST_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  async resolve(service: string, filter: InstanceFilter): Promise<ResolveAnswer> {
    return (await this.resolveBlocking(service, filter, undefined)).answer;
  }

  async listServices(): Promise<ServiceListAnswer> {
    return (await this.listServicesBlocking(undefined)).answer;
  }

  /**
   * resolve() as a blocking query: with `query`, held until the service's content index passes
   * `query.index` (see holdUntilChanged). Filters apply to the answer, not to what wakes it.
   */
  async resolveBlocking(service: string, filter: InstanceFilter, query: BlockingQuery | undefined, signal?: AbortSignal): Promise<IndexedAnswer<ResolveAnswer>> {
    const view = await this.serviceView(service, query, signal);
    return { index: String(view.index), answer: answerOf(view, filter) };
  }

  /**
   * resolveBlocking() as the JSON bytes of its answer (the hot route, http/fast-routes): encoded once
   * per content version and filter, then reused until the service changes (see EncodedAnswerCache).
   */
  async resolveEncoded(service: string, filter: InstanceFilter, query: BlockingQuery | undefined, signal?: AbortSignal): Promise<IndexedAnswer<Buffer>> {
    const view = await this.serviceView(service, query, signal);
    // The filter as parsed (its fields in a fixed order): the same query always gives the same key.
    const key = `${service}\n${JSON.stringify(filter)}`;
    const body = this.encodedAnswers.get(key, [view.instances, view.revision, view.stale], () => JSON.stringify(answerOf(view, filter)));
    return { index: String(view.index), answer: body };
  }

  private serviceView(service: string, query: BlockingQuery | undefined, signal: AbortSignal | undefined): Promise<ServiceView> {
    return this.holdUntilChanged(
      () => this.reads.resolve(service),
      (timeoutMs) => this.reads.waitForServiceChange(service, timeoutMs, signal),
      query,
    );
  }

  /** listServices() as a blocking query: wakes when a service appears, disappears or its instance count changes. */
  async listServicesBlocking(query: BlockingQuery | undefined, signal?: AbortSignal): Promise<IndexedAnswer<ServiceListAnswer>> {
    const view = await this.holdUntilChanged(
      () => this.reads.listServices(),
      (timeoutMs) => this.reads.waitForListChange(timeoutMs, signal),
      query,
    );
    return { index: String(view.index), answer: { revision: String(view.revision), stale: view.stale, services: view.services } };
  }

  /**
   * Consul's blocking query: answers at once when the document's index is past `query.index`,
   * otherwise parks the caller (no etcd call; the watch's events wake it) until the index passes it,
   * `waitMs` plus a jitter of up to waitMs/16 runs out (so clients that started together do not all
   * come back together), the client disconnects, or shutdown. Then it answers the current view.
   * At most MAX_BLOCKING_QUERIES are held per replica; beyond that 429.
   */
  private async holdUntilChanged<V extends { index: number }>(
    read: () => V,
    waitForChange: (timeoutMs: number) => Promise<WaitOutcome>,
    query: BlockingQuery | undefined,
  ): Promise<V> {
    let view = read();
    if (!query) return view;
    // From here until waitForChange() parks us, nothing awaits: the watch's events arrive as I/O
    // callbacks, so no change can slip between reading the index and parking.
    if (view.index > query.index) {
      this.blockingMetrics.blockingQueries.inc({ outcome: 'immediate' });
      return view;
    }
    if (this.heldQueries >= this.config.MAX_BLOCKING_QUERIES) {
      this.blockingMetrics.blockingQueries.inc({ outcome: 'rejected' });
      throw new RateLimitedError(`this replica holds its limit of ${this.config.MAX_BLOCKING_QUERIES} blocking queries (MAX_BLOCKING_QUERIES); retry later`, BLOCKING_RETRY_AFTER_SECONDS);
    }
    const deadline = Date.now() + query.waitMs + Math.floor((Math.random() * query.waitMs) / 16);
    let outcome: WaitOutcome = 'timeout';
    this.heldQueries++;
    this.blockingMetrics.blockingQueriesHeld.inc();
    try {
      // A wake-up whose index is still not past the client's (e.g. the client came from a replica
      // whose watch is ahead of ours) parks again for the rest of the wait.
      while (view.index <= query.index) {
        const remainingMs = deadline - Date.now();
        if (remainingMs <= 0) {
          outcome = 'timeout';
          break;
        }
        outcome = await waitForChange(remainingMs);
        view = read();
        if (outcome !== 'changed') break;
      }
    } finally {
      this.heldQueries--;
      this.blockingMetrics.blockingQueriesHeld.dec();
      this.blockingMetrics.blockingQueries.inc({ outcome: OUTCOME_LABELS[outcome] });
      if (this.heldQueries === 0) this.allAnswered?.();
    }
    return view;
  }

  /** PATCH: writes through the registrar, then waits (briefly) until this replica's watch shows it. */
  async updateInstance(
    service: string,
    id: string,
    patch: { status: InstanceStatus; metadata?: Record<string, string> },
  ): Promise<{ record: InstanceRecord; revision: string }> {
    const result = await this.registrar.updateInstance(service, id, patch);
    await this.runtime.waitForRevision(Number(result.revision), OWN_WRITE_WAIT_MS);
    return result;
  }
}
