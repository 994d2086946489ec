/**
 * The fleet driver: pods that register and heartbeat through the replicas the way real pods behind
 * a load balancer do (each sticks to one replica and moves to the next on a connection error, a
 * timeout or a 5xx), and resolvers that look every service up every ~200 ms and record, for every
 * pod, every interval during which a lookup did not list it although it was alive.
 */
import { HttpAnswer, HttpClient } from '../http';
import { forEachLimited } from '../fleet';
import { sleep, waitFor } from '../wait';

export interface FleetOptions {
  /** Service name prefix; unique per scenario so fleets never see each other. */
  name: string;
  services: number;
  podsPerService: number;
  ttlSeconds: number;
  /** Default: a third of the TTL (what the README tells pods to do). */
  heartbeatMs?: number;
  resolveEveryMs?: number;
  /**
   * Per request (default 1 s); a frozen replica costs a pod this long before it moves on. It must stay
   * well below TTL/3: a lease may have only about TTL/3 left when its replica freezes (RELIABILITY.md).
   */
  requestTimeoutMs?: number;
}

/**
 * An answer not marked `stale` promises to reflect etcd as of at most STALE_AFTER_MS ago (3 s,
 * the replicas' default here), not "now": a replica whose watch stalls serves its last confirmed view
 * until then (RELIABILITY.md, finding 3). So a silent pod listed again counts as resurrected only when
 * the answer came more than that bound (plus the lookup's own latency) after some replica had already
 * answered without it.
 */
const STALE_BOUND_MS = 3_000 + 500;

export interface Gap {
  pod: string;
  fromMs: number;
  toMs: number;
  /** Still missing when the fleet stopped. */
  open: boolean;
  /** Replica whose answer first lacked the pod, and that answer's revision and stale flag. */
  via: string;
  missingAt?: string;
}

export interface FleetReport {
  pods: number;
  durationMs: number;
  heartbeats: { ok: number; notFound: number; serverError: number; connectionError: number; other: number };
  registrations: { ok: number; failed: number };
  /** Registrations after a 404 heartbeat: the pod had become unknown (what a re-grant should avoid). */
  reregistrations: number;
  /** Pods that switched replica after an error. */
  moves: number;
  /** ok/stale/failed per lookup (failed: no replica answered 200); byStatus per attempt on one replica. */
  lookups: { ok: number; stale: number; failed: number; byStatus: Record<string, number> };
  gaps: Gap[];
  worstGapMs: number;
  /** `trail`: what each lookup said of the pod after it went silent, for a resurrection to be explained. */
  silent: Array<{ pod: string; silencedAtMs: number; goneAfterMs?: number; resurrected: boolean; trail: string[] }>;
  events: Array<{ atMs: number; what: string }>;
}

interface PodState {
  service: string;
  id: string;
  key: string;
  replica: number;
  registered: boolean;
  everRegistered: boolean;
  /** Seen in a lookup once: from then on it must stay visible while it heartbeats. */
  seen: boolean;
  /**
   * etcd revision of its last registration. A replica answers from what its watch applied (issue 22):
   * an answer about an older revision of the service (a replica whose watch lags, marked `stale`) may
   * not know the pod yet, which is not the pod going missing.
   */
  registeredRevision?: number;
  missingSince?: number;
  missingVia?: string;
  missingAt?: string;
  silentSince?: number;
  goneAt?: number;
  resurrected: boolean;
  /** Lookups after the pod went silent: "+ms present|absent stale? revision via" (bounded). */
  trail?: string[];
  timer?: NodeJS.Timeout;
  busy?: Promise<void>;
}

export class FleetDriver {
  private readonly pods: PodState[] = [];
  private readonly services: string[] = [];
  private readonly gaps: Gap[] = [];
  private readonly events: Array<{ atMs: number; what: string }> = [];
  private readonly hb = { ok: 0, notFound: 0, serverError: 0, connectionError: 0, other: 0 };
  private readonly reg = { ok: 0, failed: 0 };
  private readonly lookups = { ok: 0, stale: 0, failed: 0, byStatus: {} as Record<string, number> };
  private reregistrations = 0;
  private moves = 0;
  private running = false;
  private startedAt = 0;
  private resolverLoop?: Promise<void>;
  private resolveTurn = 0;
  private readonly heartbeatMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly http: HttpClient,
    /** Replica URLs; read on every request, so a test may change the list. */
    private readonly replicas: () => string[],
    private readonly opts: FleetOptions,
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? Math.round((opts.ttlSeconds * 1000) / 3);
    this.timeoutMs = opts.requestTimeoutMs ?? 1000;
    for (let s = 0; s < opts.services; s++) {
      const service = `${opts.name}-${s}`;
      this.services.push(service);
      for (let i = 0; i < opts.podsPerService; i++) {
        const id = `pod-${s}-${i}`;
        // Pods spread evenly over the replicas, as a round-robin load balancer would place them.
        this.pods.push({ service, id, key: `${service}/${id}`, replica: (s * opts.podsPerService + i) % replicas().length, registered: false, everRegistered: false, seen: false, resurrected: false });
      }
    }
  }

  get serviceNames(): string[] {
    return [...this.services];
  }

  /** Registers every pod (retrying through the replicas), starts heartbeats and resolvers, and waits until every pod was seen. */
  async start(): Promise<void> {
    this.running = true;
    this.startedAt = Date.now();
    this.mark('start');
    await forEachLimited(this.pods, 16, async (pod) => {
      for (let attempt = 0; attempt < 20 && !pod.registered; attempt++) {
        await this.register(pod, false);
        if (!pod.registered) await sleep(250);
      }
      if (!pod.registered) throw new Error(`could not register ${pod.key}`);
      // Like a real pod: heartbeats start with its registration, not when the whole fleet is in.
      this.schedule(pod, this.heartbeatMs * (0.5 + Math.random() * 0.5));
    });
    this.resolverLoop = this.resolveForever();
    await waitFor('every pod seen in lookups', () => this.pods.every((p) => p.seen), 30_000, 100).catch(() => {
      throw new Error(`pods never seen in lookups: ${this.pods.filter((p) => !p.seen).length}`);
    });
    this.mark('all pods visible');
  }

  /** Stops heartbeats and lookups; with `deregister`, removes the live pods (cleanup between scenarios). */
  async stop(opts: { deregister?: boolean } = {}): Promise<FleetReport> {
    this.running = false;
    for (const pod of this.pods) clearTimeout(pod.timer);
    await Promise.all(this.pods.map((p) => p.busy));
    await this.resolverLoop;
    const now = Date.now();
    for (const pod of this.pods) {
      if (pod.missingSince !== undefined && pod.silentSince === undefined) {
        this.gaps.push({ pod: pod.key, fromMs: pod.missingSince - this.startedAt, toMs: now - this.startedAt, open: true, via: pod.missingVia ?? '?' });
      }
    }
    const report = this.report(now);
    if (opts.deregister) {
      await forEachLimited(this.pods, 16, async (pod) => {
        for (const url of this.replicas()) {
          const res = await this.http.request(url, 'DELETE', `/v1/services/${pod.service}/instances/${pod.id}`, undefined, this.timeoutMs).catch(() => undefined);
          if (res && res.status < 500) return;
        }
      });
    }
    return report;
  }

  /** Stops heartbeating `count` pods (spread over the services); they must disappear from lookups. */
  silence(count: number): string[] {
    const live = this.pods.filter((p) => p.silentSince === undefined);
    const chosen = live.filter((_, i) => i % Math.max(1, Math.floor(live.length / count)) === 0).slice(0, count);
    for (const pod of chosen) {
      pod.silentSince = Date.now();
      pod.missingSince = undefined;
      clearTimeout(pod.timer);
    }
    this.mark(`silenced ${chosen.length} pods`);
    return chosen.map((p) => p.key);
  }

  /** Records a moment (a fault injected, a process thawed) on the report's timeline. */
  mark(what: string): void {
    this.events.push({ atMs: Date.now() - (this.startedAt || Date.now()), what });
  }

  /** Live pods absent from a lookup through `url` right now (final check that no registration was lost). */
  async missingVia(url: string): Promise<string[]> {
    const missing: string[] = [];
    for (const service of this.services) {
      const res = await this.http.request(url, 'GET', `/v1/services/${service}`, undefined, this.timeoutMs);
      if (res.status !== 200) throw new Error(`lookup of ${service} through ${url}: ${res.status} ${res.body}`);
      const ids = new Set((JSON.parse(res.body) as { instances: Array<{ id: string }> }).instances.map((i) => i.id));
      for (const pod of this.pods) if (pod.service === service && pod.silentSince === undefined && !ids.has(pod.id)) missing.push(pod.key);
    }
    return missing;
  }

  /** The report so far (while running: open gaps are not included yet). */
  report(now = Date.now()): FleetReport {
    const gaps = [...this.gaps].sort((a, b) => b.toMs - b.fromMs - (a.toMs - a.fromMs));
    return {
      pods: this.pods.length,
      durationMs: now - this.startedAt,
      heartbeats: { ...this.hb },
      registrations: { ...this.reg },
      reregistrations: this.reregistrations,
      moves: this.moves,
      lookups: { ...this.lookups, byStatus: { ...this.lookups.byStatus } },
      gaps,
      worstGapMs: gaps.length ? gaps[0].toMs - gaps[0].fromMs : 0,
      silent: this.pods
        .filter((p) => p.silentSince !== undefined)
        .map((p) => ({
          pod: p.key,
          silencedAtMs: p.silentSince! - this.startedAt,
          goneAfterMs: p.goneAt === undefined ? undefined : p.goneAt - p.silentSince!,
          resurrected: p.resurrected,
          trail: p.trail ?? [],
        })),
      events: [...this.events],
    };
  }

  private schedule(pod: PodState, delayMs: number): void {
    if (!this.running || pod.silentSince !== undefined) return;
    pod.timer = setTimeout(() => {
      pod.busy = this.beat(pod).finally(() => this.schedule(pod, this.heartbeatMs));
    }, delayMs);
  }

  private async beat(pod: PodState): Promise<void> {
    if (!pod.registered) return this.register(pod, pod.everRegistered);
    // One retry on the next replica, as a client behind a load balancer would get.
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await this.send(pod, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}/heartbeat`);
      if (res && res.status === 204) {
        this.hb.ok++;
        return;
      }
      if (res && res.status === 404) {
        this.hb.notFound++;
        pod.registered = false;
        return this.register(pod, true);
      }
      if (!res) this.hb.connectionError++;
      else if (res.status >= 500) this.hb.serverError++;
      else {
        this.hb.other++;
        return;
      }
      this.move(pod);
    }
  }

  private async register(pod: PodState, again: boolean): Promise<void> {
    const res = await this.send(pod, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}`, {
      address: '10.0.0.1',
      port: 8080,
      ttl: this.opts.ttlSeconds,
    });
    if (res && (res.status === 200 || res.status === 201)) {
      pod.registered = true;
      pod.registeredRevision = Number((JSON.parse(res.body) as { revision?: string }).revision) || undefined;
      pod.everRegistered = true;
      this.reg.ok++;
      if (again) this.reregistrations++;
      return;
    }
    this.reg.failed++;
    if (!res || res.status >= 500) this.move(pod);
  }

  private move(pod: PodState): void {
    pod.replica = (pod.replica + 1) % this.replicas().length;
    this.moves++;
  }

  /** undefined on a connection error or timeout. */
  private async send(pod: PodState, method: string, path: string, body?: unknown): Promise<HttpAnswer | undefined> {
    const url = this.replicas()[pod.replica % this.replicas().length];
    return this.http.request(url, method, path, body, this.timeoutMs).catch(() => undefined);
  }

  private async resolveForever(): Promise<void> {
    const every = this.opts.resolveEveryMs ?? 200;
    while (this.running) {
      const started = Date.now();
      const round = this.resolveTurn++;
      // Service i goes to replica (round + i) mod n: every service is read through every replica in turn.
      await Promise.all(this.services.map((s, i) => this.resolve(s, round + i)));
      await sleep(Math.max(0, every - (Date.now() - started)));
    }
  }

  private async resolve(service: string, turn: number): Promise<void> {
    const urls = this.replicas();
    const first = turn % urls.length;
    for (let attempt = 0; attempt < urls.length; attempt++) {
      const url = urls[(first + attempt) % urls.length];
      let res: HttpAnswer | undefined;
      try {
        res = await this.http.request(url, 'GET', `/v1/services/${service}`, undefined, this.timeoutMs);
      } catch {
        res = undefined;
      }
      const status = res ? String(res.status) : 'connection-error';
      this.lookups.byStatus[status] = (this.lookups.byStatus[status] ?? 0) + 1;
      if (!res || res.status !== 200) continue; // the next replica, as a client would
      this.lookups.ok++;
      const body = JSON.parse(res.body) as { stale: boolean; instances: Array<{ id: string }> };
      if (body.stale) this.lookups.stale++;
      this.observe(service, new Set(body.instances.map((i) => i.id)), body.stale, url, (body as { revision?: string }).revision);
      return;
    }
    this.lookups.failed++; // no replica answered 200
  }

  private observe(service: string, ids: Set<string>, stale: boolean, via: string, revision?: string): void {
    const now = Date.now();
    for (const pod of this.pods) {
      if (pod.service !== service) continue;
      const present = ids.has(pod.id);
      if (pod.silentSince !== undefined) {
        pod.trail ??= [];
        if (pod.trail.length < 200) pod.trail.push(`+${now - this.startedAt} ${present ? 'present' : 'absent'}${stale ? ' stale' : ''} r${revision} ${via}`);
        if (!present && pod.goneAt === undefined) pod.goneAt = now;
        if (present && pod.goneAt !== undefined && !stale && now - pod.goneAt > STALE_BOUND_MS) pod.resurrected = true;
        continue;
      }
      if (!pod.seen) {
        pod.seen = present;
        continue;
      }
      if (!present && revision !== undefined && pod.registeredRevision !== undefined && Number(revision) < pod.registeredRevision) continue;
      if (!present && pod.missingSince === undefined) {
        pod.missingSince = now;
        pod.missingVia = via;
        pod.missingAt = `r${revision}${stale ? ' stale' : ''}`;
      } else if (present && pod.missingSince !== undefined) {
        this.gaps.push({ pod: pod.key, fromMs: pod.missingSince - this.startedAt, toMs: now - this.startedAt, open: false, via: pod.missingVia ?? '?', missingAt: pod.missingAt });
        pod.missingSince = undefined;
      }
    }
  }
}

/** Runs `task` for every item with at most `concurrency` in flight. */
/** A short, readable summary for logs and reports. */
export function summarize(r: FleetReport): string {
  const worst = r.gaps.slice(0, 3).map((g) => `${g.pod} ${g.toMs - g.fromMs} ms at +${g.fromMs} ms via ${g.via}${g.missingAt ? ` (${g.missingAt})` : ''}${g.open ? ' (open)' : ''}`);
  const gone = r.silent.map((s) => s.goneAfterMs ?? Infinity);
  return [
    `pods ${r.pods}, ${Math.round(r.durationMs / 1000)} s`,
    `heartbeats ok ${r.heartbeats.ok}, 404 ${r.heartbeats.notFound}, 5xx ${r.heartbeats.serverError}, conn ${r.heartbeats.connectionError}`,
    `registrations ok ${r.registrations.ok} failed ${r.registrations.failed}, re-registrations ${r.reregistrations}, moves ${r.moves}`,
    `lookups ok ${r.lookups.ok} (stale ${r.lookups.stale}) failed ${r.lookups.failed} ${JSON.stringify(r.lookups.byStatus)}`,
    `gaps ${r.gaps.length}, worst ${r.worstGapMs} ms${worst.length ? `: ${worst.join('; ')}` : ''}`,
    gone.length ? `silent pods gone after max ${Math.max(...gone)} ms, resurrected ${r.silent.filter((s) => s.resurrected).length}` : '',
    ...r.silent.filter((s) => s.resurrected).map((s) => `resurrected ${s.pod}: ${s.trail.join('; ')}`),
    `events ${r.events.map((e) => `+${e.atMs} ${e.what}`).join(', ')}`,
  ]
    .filter(Boolean)
    .join('\n');
}
