import { EventEmitter } from 'node:events';
import { Clock, sleep, systemClock } from './clock';
import { ClosedError, RegistryClientError, RequestRejectedError } from './errors';
import { GatewayPool } from './gateway-pool';
import { ShutdownSignal, closeOnSignals } from './signals';
import { Transport, fetchTransport, rejectionOf, retryAfterMs } from './transport';

export interface RegistrationOptions {
  /** Gateway base URLs (`http://host:port`); one is preferred per instance (rendezvous hashing). */
  gateways: string[];
  /** API token (role `agent` or `admin`); sent as `Authorization: Bearer`, never logged or put in errors. */
  token?: string;
  service: string;
  id: string;
  address: string;
  port: number;
  /** Lease TTL in seconds (the gateway accepts 5-300). Heartbeats go out every TTL/3, jittered. */
  ttl: number;
  metadata?: Record<string, string>;
  tags?: string[];
  zone?: string;
  weight?: number;
  status?: 'UP' | 'DRAINING' | 'DOWN';
  /**
   * Deregister on these signals, then re-raise them (`true` = SIGTERM and SIGINT). Off by default:
   * a library should not take over a process's signals unless asked.
   */
  closeOnSignals?: boolean | ShutdownSignal[];
  /** Deadline of one HTTP request; default TTL/6 clamped to 1-5 s, so a failover fits in one interval. */
  requestTimeoutMs?: number;
  /** Test seams. */
  transport?: Transport;
  clock?: Clock;
  random?: () => number;
}

export interface RegistrationEvents {
  /** The first registration succeeded. */
  registered: [{ gateway: string; created: boolean }];
  heartbeat: [{ gateway: string }];
  /** A heartbeat (or a re-registration after it) found no gateway; the next try is scheduled. */
  'heartbeat-failed': [{ error: Error; consecutiveFailures: number; retryInMs: number }];
  /** A gateway no longer knew the instance (404; e.g. its lease expired), and it was registered again. */
  reregistered: [{ gateway: string }];
  /** Requests for this instance now go to another gateway (away from a failed one, or back to the preferred one). */
  failover: [{ from: string; to: string }];
  deregistered: [{ gateway?: string }];
  /** A gateway refused a request for a reason retrying cannot fix (wrong token, bad field ...). */
  error: [Error];
}

export type RegistrationState = 'registering' | 'registered' | 'failing' | 'closing' | 'closed';

const DEFAULT_SIGNALS: ShutdownSignal[] = ['SIGTERM', 'SIGINT'];

/**
 * One registered instance: registers, heartbeats every TTL/3 (jittered) through its preferred gateway,
 * re-registers on 404, pauses failed gateways (honouring Retry-After) and moves to the next one, and
 * deregisters on close(). At most one request of this instance is in flight at any time, so a late
 * heartbeat can never overtake the deregistration.
 */
export class InstanceRegistration extends EventEmitter<RegistrationEvents> {
  readonly service: string;
  readonly id: string;
  /** Heartbeat period before jitter: TTL/3. */
  readonly heartbeatIntervalMs: number;
  private readonly pool: GatewayPool;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly requestTimeoutMs: number;
  private readonly path: string;
  private readonly body: Record<string, unknown>;
  private currentGateway: string | undefined;
  private currentState: RegistrationState = 'registering';
  /** Set the moment a gateway accepted the registration, so close() deregisters even if start() is still unwinding. */
  private accepted = false;
  private failures = 0;
  private timer: unknown;
  private inFlight: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private disposeSignals: () => void = () => undefined;

  constructor(options: RegistrationOptions) {
    super();
    if (!(options.ttl > 0)) throw new TypeError('ttl must be a positive number of seconds');
    this.service = options.service;
    this.id = options.id;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.heartbeatIntervalMs = (options.ttl * 1000) / 3;
    this.requestTimeoutMs = options.requestTimeoutMs ?? Math.min(5000, Math.max(1000, this.heartbeatIntervalMs / 2));
    this.pool = new GatewayPool({
      gateways: options.gateways,
      key: `${options.service}/${options.id}`,
      token: options.token,
      transport: options.transport ?? fetchTransport,
      clock: this.clock,
      random: this.random,
      maxBackoffMs: this.heartbeatIntervalMs,
    });
    this.path = `/v1/services/${encodeURIComponent(options.service)}/instances/${encodeURIComponent(options.id)}`;
    const { address, port, ttl, metadata, tags, zone, weight, status } = options;
    this.body = Object.fromEntries(Object.entries({ address, port, ttl, metadata, tags, zone, weight, status }).filter(([, v]) => v !== undefined));
    if (options.closeOnSignals) this.disposeSignals = closeOnSignals(this, options.closeOnSignals === true ? DEFAULT_SIGNALS : options.closeOnSignals);
  }

  get state(): RegistrationState {
    return this.currentState;
  }

  /** The gateway that answered last (the preferred one unless it failed). */
  get gateway(): string | undefined {
    return this.currentGateway;
  }

  /** Gateways in this instance's rendezvous order: the first is preferred. */
  get gateways(): readonly string[] {
    return this.pool.order;
  }

  /**
   * Registers, retrying while no gateway answers (respecting every pause), and starts heartbeating.
   * Rejects with RequestRejectedError when a gateway refuses the registration itself (bad token or
   * field), and with ClosedError when close() is called first.
   */
  async start(): Promise<this> {
    for (;;) {
      if (this.stop.signal.aborted) throw new ClosedError('registration');
      const outcome = await this.track(this.register());
      if (this.stop.signal.aborted) throw new ClosedError('registration');
      if (outcome.ok) {
        this.currentState = 'registered';
        this.schedule(this.nextHeartbeatDelay());
        this.notify('registered', { gateway: outcome.gateway, created: outcome.created });
        return this;
      }
      if (outcome.rejected) {
        await this.close().catch(() => undefined);
        throw outcome.rejected;
      }
      await sleep(this.clock, outcome.retryInMs, this.stop.signal);
    }
  }

  /**
   * Stops heartbeating, waits for a request in flight, then deregisters (DELETE). Idempotent. Rejects
   * only when no gateway could take the DELETE; the instance then expires with its lease (one TTL).
   */
  close(): Promise<void> {
    this.closing ??= this.deregister();
    return this.closing;
  }

  private async deregister(): Promise<void> {
    this.currentState = 'closing';
    this.stop.abort();
    this.clock.clearTimeout(this.timer);
    this.disposeSignals();
    await this.inFlight?.catch(() => undefined);
    try {
      if (!this.accepted) return;
      // 404 is fine: the instance is already gone (expired, or deregistered elsewhere).
      // Pauses are for pacing retries; a deregistration gets no retry, so it tries every gateway once.
      const answer = await this.pool.send({ method: 'DELETE', path: this.path, timeoutMs: this.requestTimeoutMs, evenIfPaused: true });
      if (answer.response.status !== 204 && answer.response.status !== 404) throw rejectionOf(answer.gateway, answer.response);
      this.notify('deregistered', { gateway: answer.gateway });
    } finally {
      this.currentState = 'closed';
    }
  }

  private schedule(delayMs: number): void {
    if (this.stop.signal.aborted) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.stop.signal.aborted) return;
      // A listener that throws (EventEmitter passes it through emit) must not end the heartbeats.
      void this.track(this.heartbeat()).then(
        (next) => this.schedule(next),
        () => this.schedule(this.nextHeartbeatDelay()),
      );
    }, delayMs);
  }

  /** Records the one request in flight, so close() can wait for it. */
  private track<T>(operation: Promise<T>): Promise<T> {
    const done = operation.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight = done;
    return operation;
  }

  /** TTL/3 minus up to 20 %: spreads pods that started together, and never stretches past TTL/3. */
  private nextHeartbeatDelay(): number {
    return this.heartbeatIntervalMs * (1 - 0.2 * this.random());
  }

  /** One heartbeat (plus a re-registration after a 404); returns the delay until the next one. */
  private async heartbeat(): Promise<number> {
    try {
      const answer = await this.pool.send({ method: 'PUT', path: `${this.path}/heartbeat`, timeoutMs: this.requestTimeoutMs });
      this.noteGateway(answer.gateway);
      const { status } = answer.response;
      if (status === 204) {
        this.recovered();
        this.notify('heartbeat', { gateway: answer.gateway });
        return this.nextHeartbeatDelay();
      }
      if (status === 404) return await this.reregister();
      if (status === 429) return this.failed(new RegistryClientError(`${answer.gateway} answered 429`), retryAfterMs(answer.response, this.clock.now()));
      this.emitError(rejectionOf(answer.gateway, answer.response));
      return this.nextHeartbeatDelay();
    } catch (err) {
      return this.failed(err as Error);
    }
  }

  private async reregister(): Promise<number> {
    const outcome = await this.register();
    if (outcome.ok) {
      this.recovered();
      this.notify('reregistered', { gateway: outcome.gateway });
      return this.nextHeartbeatDelay();
    }
    if (outcome.rejected) {
      this.emitError(outcome.rejected);
      return this.nextHeartbeatDelay();
    }
    return this.failed(outcome.error, outcome.retryInMs);
  }

  private async register(): Promise<
    | { ok: true; gateway: string; created: boolean }
    | { ok: false; rejected?: RequestRejectedError; error: Error; retryInMs: number }
  > {
    try {
      const answer = await this.pool.send({ method: 'PUT', path: this.path, body: this.body, timeoutMs: this.requestTimeoutMs });
      this.noteGateway(answer.gateway);
      const { status } = answer.response;
      if (status === 200 || status === 201) {
        this.accepted = true;
        return { ok: true, gateway: answer.gateway, created: status === 201 };
      }
      if (status === 429) {
        const error = new RegistryClientError(`${answer.gateway} answered 429 (registration rate limit)`);
        return { ok: false, error, retryInMs: this.retryDelay(retryAfterMs(answer.response, this.clock.now())) };
      }
      const rejected = rejectionOf(answer.gateway, answer.response);
      return { ok: false, rejected, error: rejected, retryInMs: this.heartbeatIntervalMs };
    } catch (err) {
      return { ok: false, error: err as Error, retryInMs: this.retryDelay() };
    }
  }

  private failed(error: Error, retryAfter?: number): number {
    this.failures++;
    if (this.currentState === 'registered') this.currentState = 'failing';
    const retryInMs = this.retryDelay(retryAfter);
    this.notify('heartbeat-failed', { error, consecutiveFailures: this.failures, retryInMs });
    return retryInMs;
  }

  private recovered(): void {
    this.failures = 0;
    if (this.currentState === 'failing') this.currentState = 'registered';
  }

  /**
   * After a failure: never sooner than the gateway asked (Retry-After) or than the first paused
   * gateway may be tried again, and never later than the next regular heartbeat would have been
   * (unless Retry-After says so).
   */
  private retryDelay(retryAfter?: number): number {
    const paused = this.pool.retryInMs();
    const floor = 250 + this.random() * 250;
    return Math.max(retryAfter ?? 0, Math.min(this.heartbeatIntervalMs, Math.max(paused, floor)));
  }

  private noteGateway(gateway: string): void {
    const previous = this.currentGateway;
    this.currentGateway = gateway;
    if (previous && previous !== gateway) this.notify('failover', { from: previous, to: gateway });
  }

  /** 'error' only reaches listeners that exist: an unheard error must not crash the pod (EventEmitter throws). */
  private emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.notify('error', error);
  }

  /**
   * emit() passes a listener's exception through to us; taken for a failed request, it would turn a
   * logging bug into a retry loop. It becomes a process warning instead, and the schedule goes on.
   */
  private notify<K extends keyof RegistrationEvents>(event: K, ...args: RegistrationEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: RegistrationEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.emitWarning(`a "${event}" listener of registration ${this.service}/${this.id} threw: ${(err as Error)?.message ?? String(err)}`, 'RegistryClientWarning');
    }
  }
}

/** Registers an instance and resolves once a gateway accepted it; the returned handle heartbeats by itself. */
export function registerInstance(options: RegistrationOptions): Promise<InstanceRegistration> {
  return new InstanceRegistration(options).start();
}
