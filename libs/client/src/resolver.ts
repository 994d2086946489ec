import { backoffMs } from './backoff';
import { Clock, sleep, systemClock } from './clock';
import { GatewaysUnavailableError, RegistryClientError } from './errors';
import { GatewayPause, GatewayPool } from './gateway-pool';
import { PickOptions, Picker } from './picker';
import { HttpResponse, Transport, errorBody, fetchTransport, rejectionOf, retryAfterMs } from './transport';
import { Instance, InstanceFilter, filterQuery } from './types';

export interface ResolverOptions {
  gateways: string[];
  /** API token (role `reader`, `agent` or `admin`). */
  token?: string;
  /** Deadline of one ordinary request (default 5 s). */
  requestTimeoutMs?: number;
  /** Polling period of a watch while its gateway does not offer blocking queries (default 3 s). */
  pollIntervalMs?: number;
  /** How long a blocking query may be held by the gateway (default 60 s, the gateway's maximum is 10 min). */
  waitMs?: number;
  /** Longest pause between retries while no gateway answers (default 10 s). */
  maxBackoffMs?: number;
  /** Test seams. */
  transport?: Transport;
  clock?: Clock;
  random?: () => number;
}

/** One answer about a service. */
export interface Resolution {
  service: string;
  instances: Instance[];
  /** The etcd revision the gateway's answer reflects. */
  revision: string;
  /** `X-Registry-Index` of the answer, when the gateway supports blocking queries. */
  index?: string;
  /**
   * true when these may not be the current instances: the gateway said so (etcd unreachable behind
   * it), or no gateway answered and this is the last good answer, kept (`unreachable`).
   */
  stale: boolean;
  /** No gateway answered: this is the last good answer. */
  unreachable: boolean;
  /** The gateway that answered (the last one that did, when `unreachable`). */
  gateway: string;
  /** Clock time the answer arrived. */
  receivedAt: number;
}

export interface WatchOptions {
  /** Called for failures a watch cannot fix by retrying (bad filter, wrong token) and while no answer was ever received. */
  onError?: (error: Error) => void;
}

/**
 * Lookups with a memory: `get`, `watch` and `pick` over the gateways. Each service has its own
 * rendezvous order (services spread over replicas; one service's watch sticks to one). When no gateway
 * answers, the last good answer of that service and filter is handed out again with `stale: true` and
 * `unreachable: true`: a caller never gets an empty list because of an error, only because the service
 * has no instances. With no previous answer, `get` rejects instead.
 */
export class Resolver {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly transport: Transport;
  private readonly pauses = new Map<string, GatewayPause>();
  private readonly pools = new Map<string, GatewayPool>();
  private readonly lastGood = new Map<string, Resolution>();
  private readonly watches = new Set<ServiceWatch>();
  private readonly pickers = new Map<string, Picker>();
  readonly requestTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly waitMs: number;
  readonly maxBackoffMs: number;

  constructor(private readonly options: ResolverOptions) {
    if (!options.gateways?.length) throw new TypeError('at least one gateway URL is required');
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.transport = options.transport ?? fetchTransport;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.pollIntervalMs = options.pollIntervalMs ?? 3000;
    this.waitMs = options.waitMs ?? 60_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
  }

  /**
   * The service's instances matching `filter`. Served from a live watch of the same service and
   * filter when there is one; otherwise one request. No gateway answering: the last good answer with
   * `stale: true`, or GatewaysUnavailableError when there never was one. A refused request (bad filter,
   * wrong token) rejects with RequestRejectedError.
   */
  async get(service: string, filter: InstanceFilter = {}): Promise<Resolution> {
    const key = keyOf(service, filter);
    for (const watch of this.watches) {
      if (watch.key === key && watch.current && !watch.current.unreachable) return watch.current;
    }
    try {
      const answer = await this.pool(service).send({ method: 'GET', path: pathOf(service, filterQuery(filter)), timeoutMs: this.requestTimeoutMs });
      if (answer.response.status === 200) return this.remember(key, parseResolution(service, answer.gateway, answer.response, this.clock.now()));
      if (answer.response.status === 429) throw new GatewaysUnavailableError([{ gateway: answer.gateway, status: 429, reason: 'HTTP 429' }], retryAfterMs(answer.response, this.clock.now()) ?? 1000);
      throw rejectionOf(answer.gateway, answer.response);
    } catch (err) {
      if (!(err instanceof GatewaysUnavailableError)) throw err;
      const last = this.lastGood.get(key);
      if (!last) throw err;
      return { ...last, stale: true, unreachable: true };
    }
  }

  /**
   * Calls `listener` with the first answer and then whenever the instances (or `stale`) change. Uses
   * blocking queries once a gateway has shown it supports them (an `X-Registry-Index` header), and
   * polls every `pollIntervalMs` otherwise. While no gateway answers, the listener gets the last answer
   * once more with `stale: true`, and the watch keeps retrying with backoff until a gateway is back.
   */
  watch(service: string, listener: (resolution: Resolution) => void, filter: InstanceFilter = {}, options: WatchOptions = {}): ServiceWatch {
    const watch = new ServiceWatch(this, service, filter, listener, options, () => this.watches.delete(watch));
    this.watches.add(watch);
    watch.start();
    return watch;
  }

  /** One instance of the service by `strategy` (default round-robin); undefined when it has none. */
  async pick(service: string, options: PickOptions & { filter?: InstanceFilter } = {}): Promise<Instance | undefined> {
    const { filter, ...pickOptions } = options;
    const resolution = await this.get(service, filter);
    const pickerKey = `${keyOf(service, filter ?? {})}#${pickOptions.strategy ?? ''}#${pickOptions.zone ?? ''}`;
    let picker = this.pickers.get(pickerKey);
    if (!picker) this.pickers.set(pickerKey, (picker = new Picker(pickOptions)));
    return picker.pick(resolution.instances);
  }

  /** Stops every watch (a blocking query in flight is aborted). */
  async close(): Promise<void> {
    await Promise.all([...this.watches].map((watch) => watch.close()));
  }

  /** @internal */
  pool(service: string): GatewayPool {
    let pool = this.pools.get(service);
    if (!pool) {
      pool = new GatewayPool({
        gateways: this.options.gateways,
        key: service,
        token: this.options.token,
        transport: this.transport,
        clock: this.clock,
        random: this.random,
        maxBackoffMs: this.maxBackoffMs,
        pauses: this.pauses,
      });
      this.pools.set(service, pool);
    }
    return pool;
  }

  /** @internal */
  remember(key: string, resolution: Resolution): Resolution {
    this.lastGood.set(key, resolution);
    return resolution;
  }

  /** @internal */
  lastAnswer(key: string): Resolution | undefined {
    return this.lastGood.get(key);
  }

  /** @internal */
  get timing(): { clock: Clock; random: () => number } {
    return { clock: this.clock, random: this.random };
  }
}

/** A running watch of one service and filter (see Resolver.watch). */
export class ServiceWatch {
  readonly key: string;
  private latest: Resolution | undefined;
  private readonly abort = new AbortController();
  private readonly pickers = new Map<string, Picker>();
  private running: Promise<void> | undefined;
  private blocking = false;

  constructor(
    private readonly resolver: Resolver,
    readonly service: string,
    private readonly filter: InstanceFilter,
    private readonly listener: (resolution: Resolution) => void,
    private readonly options: WatchOptions,
    private readonly onClose: () => void,
  ) {
    this.key = keyOf(service, filter);
  }

  /** The latest answer (undefined until the first one arrived). */
  get current(): Resolution | undefined {
    return this.latest;
  }

  /** true while the latest answer may be out of date (see Resolution.stale); also before any answer. */
  get stale(): boolean {
    return this.latest?.stale ?? true;
  }

  /** `blocking` while the gateway answers with an X-Registry-Index (held queries), else `polling`. */
  get mode(): 'blocking' | 'polling' {
    return this.blocking ? 'blocking' : 'polling';
  }

  /** One instance of the latest answer by `strategy`; undefined before the first answer or when there is none. */
  pick(options: PickOptions = {}): Instance | undefined {
    const pickerKey = `${options.strategy ?? ''}#${options.zone ?? ''}`;
    let picker = this.pickers.get(pickerKey);
    if (!picker) this.pickers.set(pickerKey, (picker = new Picker(options)));
    return picker.pick(this.latest?.instances ?? []);
  }

  /** Stops the watch; resolves once its loop has ended (a held blocking query is aborted). */
  close(): Promise<void> {
    if (!this.abort.signal.aborted) {
      this.abort.abort();
      this.onClose();
    }
    return this.running ?? Promise.resolve();
  }

  /** @internal */
  start(): void {
    this.running = this.run().catch((err: unknown) => this.reportError(err as Error));
  }

  private async run(): Promise<void> {
    const { clock, random } = this.resolver.timing;
    const signal = this.abort.signal;
    const pool = this.resolver.pool(this.service);
    const waitMs = this.resolver.waitMs;
    let index: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      const query = filterQuery(this.filter);
      if (index) {
        query.set('index', index);
        query.set('wait', `${waitMs}ms`);
      }
      // The gateway adds up to wait/16 of jitter to a held query (as Consul does).
      const timeoutMs = index ? waitMs + waitMs / 16 + this.resolver.requestTimeoutMs : this.resolver.requestTimeoutMs;
      const startedAt = clock.now();
      let delayMs: number;
      try {
        const answer = await pool.send({ method: 'GET', path: pathOf(this.service, query), timeoutMs, signal });
        const { status } = answer.response;
        if (status === 200) {
          const resolution = parseResolution(this.service, answer.gateway, answer.response, clock.now());
          const previousIndex = index;
          index = resolution.index && /^\d+$/.test(resolution.index) ? resolution.index : undefined;
          this.blocking = index !== undefined;
          failures = 0;
          this.accept(resolution);
          if (!index) delayMs = this.resolver.pollIntervalMs * (0.9 + 0.2 * random());
          // An unchanged index answered at once would otherwise become a request loop.
          else delayMs = index === previousIndex && clock.now() - startedAt < 1000 ? 1000 : 0;
        } else if (status === 400 && ['index', 'wait'].includes(errorBody(answer.response)?.field ?? '')) {
          // An older gateway (behind the same URLs, after a failover) that has no blocking queries.
          index = undefined;
          this.blocking = false;
          delayMs = 0;
        } else if (status === 429) {
          // Too many held queries on that replica: back off as told, keep the answer we have.
          failures++;
          delayMs = Math.max(retryAfterMs(answer.response, clock.now()) ?? 0, this.backoff(failures, random));
        } else {
          failures++;
          this.reportError(rejectionOf(answer.gateway, answer.response));
          delayMs = Math.max(this.resolver.pollIntervalMs, this.backoff(failures, random));
        }
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        // The first request after an outage asks without an index: it must answer at once (and clear
        // `stale`), not be held until the next change on a gateway whose content did not move.
        index = undefined;
        this.markUnreachable(err as Error);
        delayMs = Math.max(pool.retryInMs(), this.backoff(failures, random));
      }
      await sleep(clock, delayMs, signal);
    }
  }

  private backoff(failures: number, random: () => number): number {
    return backoffMs(failures, 500, this.resolver.maxBackoffMs, random);
  }

  private accept(resolution: Resolution): void {
    this.resolver.remember(this.key, resolution);
    const previous = this.latest;
    this.latest = resolution;
    if (!previous || changed(previous, resolution)) this.notify(resolution);
  }

  private markUnreachable(error: Error): void {
    const last = this.latest ?? this.resolver.lastAnswer(this.key);
    if (!last) return this.reportError(error);
    if (this.latest?.unreachable) return;
    this.latest = { ...last, stale: true, unreachable: true };
    this.notify(this.latest);
  }

  private notify(resolution: Resolution): void {
    try {
      this.listener(resolution);
    } catch (err) {
      // A throwing listener must not end the watch.
      this.reportError(err as Error);
    }
  }

  private reportError(error: Error): void {
    this.options.onError?.(error);
  }
}

function changed(a: Resolution, b: Resolution): boolean {
  return a.stale !== b.stale || a.unreachable !== b.unreachable || JSON.stringify(a.instances) !== JSON.stringify(b.instances);
}

function keyOf(service: string, filter: InstanceFilter): string {
  return `${service}?${filterQuery(filter).toString()}`;
}

function pathOf(service: string, query: URLSearchParams): string {
  const qs = query.toString();
  return `/v1/services/${encodeURIComponent(service)}${qs ? `?${qs}` : ''}`;
}

function parseResolution(service: string, gateway: string, response: HttpResponse, now: number): Resolution {
  let body: { revision?: unknown; stale?: unknown; instances?: unknown };
  try {
    body = JSON.parse(response.body) as typeof body;
  } catch {
    throw new RegistryClientError(`${gateway} answered 200 with a body that is not JSON`);
  }
  if (!Array.isArray(body?.instances)) throw new RegistryClientError(`${gateway} answered 200 without an instances list`);
  return {
    service,
    instances: body.instances as Instance[],
    revision: String(body.revision ?? ''),
    index: response.header('x-registry-index') ?? undefined,
    stale: body.stale === true,
    unreachable: false,
    gateway,
    receivedAt: now,
  };
}

/** A Resolver for these gateways and token. */
export function resolver(options: ResolverOptions): Resolver {
  return new Resolver(options);
}
