import { backoffMs } from './backoff';
import { Clock } from './clock';
import { GatewayFailure, GatewaysUnavailableError } from './errors';
import { rendezvousOrder } from './rendezvous';
import { HttpRequest, HttpResponse, Transport, retryAfterMs } from './transport';

export interface GatewayPoolOptions {
  gateways: readonly string[];
  /** Rendezvous key: the instance (`service/id`) or the resolved service. */
  key: string;
  token?: string;
  transport: Transport;
  clock: Clock;
  random: () => number;
  /** First pause of a gateway after a failure; doubles per consecutive failure. */
  minBackoffMs?: number;
  /** Longest pause of a failed gateway: how long it may take to go back to the preferred one. */
  maxBackoffMs?: number;
  /** Pauses shared with other pools (a resolver's pools, one per service), so a dead gateway is learnt once. */
  pauses?: Map<string, GatewayPause>;
}

export interface GatewayAnswer {
  gateway: string;
  response: HttpResponse;
}

export interface GatewayPause {
  until: number;
  failures: number;
}

/**
 * The configured gateways in this key's rendezvous order, with a pause per failed gateway. A request
 * goes to the first gateway that is not paused; a connection error, timeout or 5xx pauses that gateway
 * (at least for its Retry-After, else an exponential, jittered backoff) and the request moves on to the
 * next one at once. A paused gateway is tried again first once its pause ends, so traffic returns to
 * the preferred replica as soon as it answers. Every non-5xx answer is returned to the caller.
 */
export class GatewayPool {
  readonly order: readonly string[];
  private readonly pauses: Map<string, GatewayPause>;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: GatewayPoolOptions) {
    if (!options.gateways.length) throw new TypeError('at least one gateway URL is required');
    const urls = options.gateways.map((g) => g.replace(/\/+$/, ''));
    this.pauses = options.pauses ?? new Map();
    this.order = rendezvousOrder(options.key, [...new Set(urls)]);
    this.minBackoffMs = options.minBackoffMs ?? 500;
    this.maxBackoffMs = Math.max(this.minBackoffMs, options.maxBackoffMs ?? 10_000);
  }

  /** Gateways that may be tried now, preferred first. */
  available(): string[] {
    const now = this.options.clock.now();
    return this.order.filter((g) => (this.pauses.get(g)?.until ?? 0) <= now);
  }

  /** How long until some gateway may be tried again (0 when one may be tried now). */
  retryInMs(): number {
    const now = this.options.clock.now();
    return Math.max(0, Math.min(...this.order.map((g) => (this.pauses.get(g)?.until ?? 0) - now)));
  }

  /** `evenIfPaused`: one attempt per gateway regardless of pauses (the last request of a closing handle). */
  async send(request: { method: HttpRequest['method']; path: string; body?: unknown; timeoutMs: number; signal?: AbortSignal; evenIfPaused?: boolean }): Promise<GatewayAnswer> {
    const failures: GatewayFailure[] = [];
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    for (const gateway of request.evenIfPaused ? this.order : this.available()) {
      let response: HttpResponse;
      try {
        response = await this.options.transport({ method: request.method, url: gateway + request.path, headers, body, timeoutMs: request.timeoutMs, signal: request.signal });
      } catch (err) {
        if (request.signal?.aborted) throw err;
        this.pause(gateway);
        failures.push({ gateway, reason: (err as Error)?.message ?? String(err) });
        continue;
      }
      if (response.status >= 500) {
        this.pause(gateway, retryAfterMs(response, this.options.clock.now()));
        failures.push({ gateway, status: response.status, reason: `HTTP ${response.status}` });
        continue;
      }
      this.pauses.delete(gateway);
      return { gateway, response };
    }
    throw new GatewaysUnavailableError(failures, this.retryInMs());
  }

  private pause(gateway: string, retryAfter?: number): void {
    const failures = (this.pauses.get(gateway)?.failures ?? 0) + 1;
    const backoff = backoffMs(failures, this.minBackoffMs, this.maxBackoffMs, this.options.random);
    this.pauses.set(gateway, { until: this.options.clock.now() + Math.max(backoff, retryAfter ?? 0), failures });
  }
}
