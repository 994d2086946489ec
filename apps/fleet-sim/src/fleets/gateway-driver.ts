import { HttpResult, KeepAliveHttpClient, errorLabel } from '../http-client';
import { sleep } from '../progress';
import { RawHttpPool, RawRequest } from '../raw-http';
import { CallOutcome, FleetDriver, Resolver, SimPod } from './fleet-driver';

export type Spread = 'round-robin' | 'sticky';

export interface GatewayDriverOptions {
  /** How long one registration keeps retrying 503/429 answers before it counts as failed (120 s). */
  registerDeadlineMs?: number;
  /** Sockets per replica for heartbeats and for registrations each (256): a 100k-pod fleet shares them. */
  maxSockets?: number;
  /**
   * Heartbeats and registrations over RawHttpPool (pre-encoded requests, status-line parse, callbacks)
   * instead of node:http: what lets one generator process send 5,000+ heartbeats/s on a shared 2-core
   * machine, and keeps the generator's CPU per registration from being taken from the gateway it measures.
   */
  rawHttp?: boolean;
}

/** Registrations the gateway shed or rate-limited, and what the pods did about it. */
export interface RetryStats {
  /** Answers that made a pod wait and try again, by status ("503", "429"). */
  retried: Record<string, number>;
  /** Registrations that succeeded only after at least one retry. */
  succeededAfterRetry: number;
  /** Registrations still refused when their deadline passed. */
  gaveUp: number;
  /** Retry-After values seen, in seconds (min / max), to show the gateway's spread. */
  retryAfterSeconds: { min: number; max: number };
}

const RETRYABLE = new Set([429, 503]);

/**
 * How long a pod waits before trying again: the server's Retry-After plus up to a second of jitter
 * (pods told the same value must not come back in lockstep), or an exponential backoff when the
 * answer had none.
 */
export function retryDelayMs(retryAfterSeconds: number | undefined, attempt: number, random = Math.random): number {
  const base = retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : Math.min(5000, 250 * 2 ** attempt);
  return base + Math.floor(random() * 1000);
}

/**
 * Pods talking REST to one or several gateway replicas. `round-robin` sends each call of a pod to the
 * next replica (an L4 load balancer without affinity); `sticky` pins each pod to one replica.
 * Registrations answered 503 (shed) or 429 (rate limited) are retried after `Retry-After`, as a real
 * pod's SDK does: overload then shows as retries and a slower start, not as lost pods.
 */
export class GatewayDriver implements FleetDriver, Resolver {
  readonly design = 'gateway' as const;
  readonly description: string;
  readonly retryStats: RetryStats = { retried: {}, succeededAfterRetry: 0, gaveUp: 0, retryAfterSeconds: { min: Infinity, max: 0 } };
  private readonly clients: KeepAliveHttpClient[];
  /**
   * Registrations get sockets of their own: real pods each have a connection, so one pod's heartbeat
   * never waits behind other pods' registrations. Sharing one pool made a 40,000-pod start queue
   * heartbeats for 30 s behind registrations (leases lapsed in the load generator, not the gateway).
   */
  private readonly registerClients: KeepAliveHttpClient[];
  private readonly registerDeadlineMs: number;
  /** With `rawHttp`: one pool per replica for heartbeats, and one for registrations (own sockets, as above). */
  private readonly beatPools: RawHttpPool[] = [];
  private readonly registerPools: RawHttpPool[] = [];

  constructor(
    urls: string[],
    private readonly ttlSeconds: number,
    callTimeoutMs: number,
    private readonly spread: Spread,
    opts: GatewayDriverOptions = {},
  ) {
    const sockets = opts.maxSockets ?? 256;
    this.clients = urls.map((u) => new KeepAliveHttpClient(u, callTimeoutMs, sockets));
    this.registerClients = opts.rawHttp ? [] : urls.map((u) => new KeepAliveHttpClient(u, callTimeoutMs, sockets));
    this.registerDeadlineMs = opts.registerDeadlineMs ?? 120_000;
    if (opts.rawHttp) {
      this.beatPools = urls.map((u) => new RawHttpPool(u, { sockets, timeoutMs: callTimeoutMs }));
      this.registerPools = urls.map((u) => new RawHttpPool(u, { sockets, timeoutMs: callTimeoutMs }));
    }
    this.description = `each pod: REST register once (retrying 503/429 after Retry-After), then PUT .../heartbeat every tick to ${urls.length} replica(s) (${spread}); the gateway renews leases over shared streams`;
  }

  async register(pod: SimPod, tick = 0): Promise<CallOutcome> {
    const body = {
      address: `10.${(pod.index >> 16) & 255}.${(pod.index >> 8) & 255}.${pod.index & 255}`,
      port: 8080,
      ttl: this.ttlSeconds,
      metadata: { version: '1.0.0' },
      tags: ['sim'],
      zone: `zone-${pod.index % 3}`,
    };
    const path = instancePath(pod);
    let attemptOnce: () => Promise<HttpResult | string>;
    if (this.registerPools.length) {
      const pool = this.registerPools[this.replica(pod, tick) % this.registerPools.length];
      // Encoded once: a retry sends the same bytes to the same replica.
      const bytes = pool.jsonRequestBytes('PUT', path, JSON.stringify(body));
      attemptOnce = () => sendRaw(pool, bytes);
    } else {
      attemptOnce = () => this.send(this.registerClients, pod, tick, 'PUT', path, body);
    }
    const deadline = Date.now() + this.registerDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      const res = await attemptOnce();
      if (typeof res !== 'string' && RETRYABLE.has(res.status)) {
        if (Date.now() < deadline) {
          this.noteRetry(res);
          await sleep(retryDelayMs(res.retryAfterSeconds, attempt));
          continue;
        }
        this.retryStats.gaveUp++;
      }
      const outcome = this.outcome(res);
      if (outcome.ok) {
        pod.registered = true;
        if (attempt > 0) this.retryStats.succeededAfterRetry++;
      }
      return outcome;
    }
  }

  async beat(pod: SimPod, tick: number): Promise<CallOutcome> {
    if (!pod.registered) {
      const r = await this.register(pod, tick);
      return { ok: r.ok, outcome: r.ok ? 're-registered' : r.outcome };
    }
    const r = this.outcome(await this.send(this.clients, pod, tick, 'PUT', `${instancePath(pod)}/heartbeat`));
    if (r.outcome === '404') pod.registered = false; // the SDK registers again on the next tick
    return r;
  }

  /**
   * beat() in callback form over the raw pool (needs `rawHttp`): no promise, no node:http objects
   * per heartbeat. A pod without a lease registers instead, as in beat() (over the registration pool).
   */
  beatRaw(pod: SimPod, tick: number, done: (r: CallOutcome) => void): void {
    if (!pod.registered) {
      this.register(pod, tick).then((r) => done({ ok: r.ok, outcome: r.ok ? 're-registered' : r.outcome }));
      return;
    }
    const pool = this.beatPools[this.replica(pod, tick) % this.beatPools.length];
    pool.send(pool.requestBytes('PUT', `${instancePath(pod)}/heartbeat`), (err, status) => {
      if (err !== undefined) return done({ ok: false, outcome: err });
      if (status === 404) pod.registered = false; // the SDK registers again on the next tick
      done({ ok: status >= 200 && status < 300, outcome: String(status) });
    });
  }

  /** Heartbeats written to a socket of the raw pools so far (registrations not included). */
  get heartbeatsWritten(): number {
    return this.beatPools.reduce((n, p) => n + p.written, 0);
  }

  /** Heartbeats waiting for a socket of the raw pools (0 without `rawHttp`). */
  get heartbeatsQueued(): number {
    return this.beatPools.reduce((n, p) => n + p.queued, 0);
  }

  async resolve(service: string, n: number): Promise<CallOutcome> {
    const client = this.clients[n % this.clients.length];
    try {
      const res = await client.request('GET', `/v1/services/${service}`, undefined, true);
      return { ok: res.status === 200, outcome: String(res.status) };
    } catch (err) {
      return { ok: false, outcome: errorLabel(err) };
    }
  }

  private noteRetry(res: HttpResult): void {
    const key = String(res.status);
    this.retryStats.retried[key] = (this.retryStats.retried[key] ?? 0) + 1;
    if (res.retryAfterSeconds !== undefined) {
      const range = this.retryStats.retryAfterSeconds;
      range.min = Math.min(range.min, res.retryAfterSeconds);
      range.max = Math.max(range.max, res.retryAfterSeconds);
    }
  }

  private outcome(res: HttpResult | string): CallOutcome {
    if (typeof res === 'string') return { ok: false, outcome: res };
    return { ok: res.status >= 200 && res.status < 300, outcome: String(res.status) };
  }

  /** Which replica gets this call of this pod (an index to take modulo the replica count). */
  private replica(pod: SimPod, tick: number): number {
    return this.spread === 'sticky' ? pod.index : pod.index + tick;
  }

  /** The answer, or the label of the network error. */
  private async send(pool: KeepAliveHttpClient[], pod: SimPod, tick: number, method: string, path: string, body?: unknown): Promise<HttpResult | string> {
    const client = pool[this.replica(pod, tick) % pool.length];
    try {
      return await client.request(method, path, body);
    } catch (err) {
      return errorLabel(err);
    }
  }

  async close(): Promise<void> {
    for (const c of [...this.clients, ...this.registerClients]) c.close();
    for (const p of [...this.beatPools, ...this.registerPools]) p.close();
  }
}

/** One request over a raw pool as node:http's client would answer it (no body: nobody reads it), or the error label. */
function sendRaw(pool: RawHttpPool, bytes: RawRequest): Promise<HttpResult | string> {
  return new Promise((resolve) =>
    pool.send(bytes, (err, status, retryAfterSeconds) => resolve(err !== undefined ? err : { status, body: '', retryAfterSeconds })),
  );
}

export function instancePath(pod: SimPod): string {
  return `/v1/services/${pod.service}/instances/${pod.id}`;
}
