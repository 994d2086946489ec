/**
 * What the gateway says about its own lease engine, from its Prometheus `/metrics`: counters are
 * diffed per phase, the lag gauges are polled so a phase reports the worst value it saw (a single
 * reading at the end would miss a backlog that built up and drained during a storm).
 */
import { PromSample, parsePrometheusText, sumSamples } from '@app/stack';

export interface GatewayCounters {
  regrants: number;
  /** Shared leases granted (registry_lease_grants_total; absent before issue 21). */
  leaseGrants?: number;
  /** Instances the expiry sweep deleted (registry_expirations_total; absent before issue 21). */
  expirations?: number;
  renewalsSent: number;
  renewalsConfirmed: number;
  renewalsLost: number;
  admissionRejections: Record<string, number>;
  heartbeats: Record<string, number>;
}

export interface GatewayGaugePeaks {
  renewalBacklog: number;
  renewalOldestDueSeconds: number;
  eventLoopDelaySeconds: number;
  instances: number;
  /** Issue 21's expiry: 1 if any replica held deletes by self-preservation / paused expiry in the phase. */
  selfPreservation?: number;
  expiryPaused?: number;
  /** Most instances one replica found overdue by its own knowledge at one pass (registry_expiry_overdue_instances). */
  expiryOverdue?: number;
  /**
   * V8 heap used (nodejs_heap_size_used_bytes, MB), worst replica: its highest reading, and the lowest
   * reading of the replica with the highest low (a sawtooth's floor: about the live heap).
   */
  heapUsedMbMax?: number;
  heapUsedMbFloor?: number;
}

function byLabel(samples: PromSample[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.name === name && s.labels[label] !== undefined) out[s.labels[label]] = (out[s.labels[label]] ?? 0) + s.value;
  return out;
}

export function gatewayCounters(samples: PromSample[]): GatewayCounters {
  const renewals = byLabel(samples, 'registry_lease_renewals_total', 'result');
  return {
    regrants: sumSamples(samples, 'registry_lease_regrants_total'),
    leaseGrants: sumSamples(samples, 'registry_lease_grants_total'),
    expirations: sumSamples(samples, 'registry_expirations_total'),
    renewalsSent: renewals.sent ?? 0,
    renewalsConfirmed: renewals.confirmed ?? 0,
    renewalsLost: renewals.lost ?? 0,
    admissionRejections: byLabel(samples, 'registry_admission_rejections_total', 'reason'),
    heartbeats: byLabel(samples, 'registry_heartbeats_total', 'result'),
  };
}

function diffRecord(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - (a[k] ?? 0)]));
}

export function diffGatewayCounters(a: GatewayCounters, b: GatewayCounters): GatewayCounters {
  return {
    regrants: b.regrants - a.regrants,
    leaseGrants: (b.leaseGrants ?? 0) - (a.leaseGrants ?? 0),
    expirations: (b.expirations ?? 0) - (a.expirations ?? 0),
    renewalsSent: b.renewalsSent - a.renewalsSent,
    renewalsConfirmed: b.renewalsConfirmed - a.renewalsConfirmed,
    renewalsLost: b.renewalsLost - a.renewalsLost,
    admissionRejections: diffRecord(a.admissionRejections, b.admissionRejections),
    heartbeats: diffRecord(a.heartbeats, b.heartbeats),
  };
}

/**
 * One replica's `/metrics`, or several replicas' (counters summed over them; gauge peaks are the
 * worst single replica's).
 */
export class GatewayProbe {
  private peaks: GatewayGaugePeaks = GatewayProbe.zeroPeaks();
  private timer?: NodeJS.Timeout;
  private readonly metricsUrls: string[];
  /** Per replica, the lowest heap reading since takePeaks(). */
  private heapFloors: number[] = [];

  constructor(metricsUrls: string | string[]) {
    this.metricsUrls = typeof metricsUrls === 'string' ? [metricsUrls] : metricsUrls;
  }

  private static zeroPeaks(): GatewayGaugePeaks {
    return { renewalBacklog: 0, renewalOldestDueSeconds: 0, eventLoopDelaySeconds: 0, instances: 0, selfPreservation: 0, expiryPaused: 0, expiryOverdue: 0 };
  }

  private async scrapeOne(url: string): Promise<PromSample[]> {
    const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
    if (res.status !== 200) throw new Error(`gateway /metrics answered ${res.status}`);
    return parsePrometheusText(await res.text());
  }

  /** Each replica's samples, peaks noted. */
  private async scrape(): Promise<PromSample[][]> {
    const each = await Promise.all(this.metricsUrls.map((u) => this.scrapeOne(u)));
    each.forEach((samples, replica) => this.notePeaks(samples, replica));
    return each;
  }

  async read(): Promise<GatewayCounters> {
    return gatewayCounters((await this.scrape()).flat());
  }

  private notePeaks(s: PromSample[], replica: number): void {
    const p = this.peaks;
    const heapMb = sumSamples(s, 'nodejs_heap_size_used_bytes') / 1048576;
    if (heapMb > 0) {
      p.heapUsedMbMax = Math.max(p.heapUsedMbMax ?? 0, Math.round(heapMb));
      this.heapFloors[replica] = Math.min(this.heapFloors[replica] ?? Infinity, heapMb);
    }
    p.renewalBacklog = Math.max(p.renewalBacklog, sumSamples(s, 'registry_lease_renewal_backlog'));
    p.renewalOldestDueSeconds = Math.max(p.renewalOldestDueSeconds, sumSamples(s, 'registry_lease_renewal_oldest_due_seconds'));
    p.eventLoopDelaySeconds = Math.max(p.eventLoopDelaySeconds, sumSamples(s, 'registry_event_loop_delay_seconds'));
    p.instances = Math.max(p.instances, sumSamples(s, 'registry_instances'));
    p.selfPreservation = Math.max(p.selfPreservation ?? 0, sumSamples(s, 'registry_self_preservation'));
    p.expiryPaused = Math.max(p.expiryPaused ?? 0, sumSamples(s, 'registry_expiry_paused'));
    p.expiryOverdue = Math.max(p.expiryOverdue ?? 0, sumSamples(s, 'registry_expiry_overdue_instances'));
  }

  /** Polls the gauges every `intervalMs` until `stop()`; a failed scrape is skipped, not fatal. */
  start(intervalMs = 2000): void {
    this.timer = setInterval(() => void this.scrape().catch(() => undefined), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The worst gauge values since the last call, and a fresh start for the next phase. */
  takePeaks(): GatewayGaugePeaks {
    const p = this.peaks;
    const floors = this.heapFloors.filter((x) => Number.isFinite(x));
    if (floors.length) p.heapUsedMbFloor = Math.round(Math.max(...floors));
    this.peaks = GatewayProbe.zeroPeaks();
    this.heapFloors = [];
    return p;
  }
}
