import { PeriodicPass } from '@app/concurrency';
import { decodeRecord } from '@app/registry';
import { SelfPreservation } from './self-preservation';
import type { ExpiryVerdict } from '../liveness/heard-sets';
import type { GuardedDelete } from '../registry-store';

/**
 * When this replica last heard each instance's pod (heartbeat, registration): a timestamp per key on
 * the HTTP thread, nothing else on the hot path. Entries older than the longest TTL are pruned.
 */
export class LivenessTable {
  private readonly heardAt = new Map<string, number>();

  get size(): number {
    return this.heardAt.size;
  }

  /** Marks `key` heard at `now`; returns when it was heard before (0 = never), for the heard-sets' once-per-pass. */
  heard(key: string, now: number): number {
    const before = this.heardAt.get(key) ?? 0;
    this.heardAt.set(key, now);
    return before;
  }

  lastHeard(key: string): number {
    return this.heardAt.get(key) ?? 0;
  }

  /** Heard within `withinMs` of `now`. */
  heardWithin(key: string, withinMs: number, now: number): boolean {
    return now - this.lastHeard(key) <= withinMs;
  }

  forget(key: string): void {
    this.heardAt.delete(key);
  }

  prune(now: number, keepMs: number): void {
    for (const [key, at] of this.heardAt) if (now - at > keepMs) this.heardAt.delete(key);
  }
}

/** What the sweep needs from the other parts (the runtime wires them; unit tests pass fakes). */
export interface ExpirySweepSources {
  /** The shared leases this replica owns, and when it became responsible for each. */
  ownedLeases(): ReadonlySet<string>;
  responsibleSince(leaseId: string): number;
  /** The lease record's key and mod_revision (the fence of every delete); undefined = unknown yet. */
  fence(leaseId: string): { key: string; modRevision: string } | undefined;
  /** Every instance on one of `leaseIds`, as the directory holds it. */
  instancesOn(leaseIds: ReadonlySet<string>, visit: (key: string, leaseId: string, modRevision: string, value: string, observedAt: number) => void): void;
  /** The other replicas' heard-sets: read once per pass, then asked per overdue instance. */
  exchange: {
    refresh(present: readonly string[], now: number): Promise<void>;
    verdict(key: string, ttlMs: number, localLastHeard: number, now: number): ExpiryVerdict;
  };
  presentReplicas(): string[];
  deleteIfUnchanged(items: readonly GuardedDelete[]): Promise<boolean[]>;
}

export interface ExpirySweepOptions {
  passMs: number;
  selfPreservation?: { threshold: number; maxMs: number };
  now?: () => number;
}

export interface ExpirySweepHooks {
  expired?(count: number): void;
  log(level: 'info' | 'warn', message: string): void;
}

export interface ExpiryStats {
  /** The last pass held deletes because a present replica's heard-sets have a gap (or could not be read). */
  paused: boolean;
  reason?: string;
  /** Instances past their TTL by local knowledge at the last pass (what would be deleted if nothing held it). */
  overdue: number;
  selfPreservation: boolean;
  /** Instances on owned leases at the last pass. */
  tracked: number;
  expired: number;
  lastPassAt: number;
}

/** Shortest instance TTL (libs/registry limits): an instance heard more recently cannot be overdue. */
const MIN_TTL_MS = 5_000;

/**
 * Expiry by the gateway (docs/shared-leases.md section 2): every pass, the owner of a shared lease
 * deletes the instances on it that no replica heard for their TTL. An instance this replica never
 * heard counts from when the replica became responsible for its lease or first saw it, never earlier,
 * so a takeover or restart can delay an expiry by one TTL, never cause one. Deletes are nested Txns
 * guarded by the instance's mod_revision (a re-registered or patched instance survives) and by the lease
 * record's (a replica that lost the lease to a takeover while frozen deletes nothing).
 *
 * A gap in another present replica's heard-sets pauses the deletes (registry_expiry_paused), and
 * self-preservation holds them when more than its threshold of the owned instances is silent at once
 * (overdue here and heard by no other replica, or not known to be: a gap counts as silent).
 */
export class ExpirySweep {
  private readonly passes: PeriodicPass;
  private readonly startedAt: number;
  /** Instance TTLs decoded once per value (key -> [mod_revision, ttl ms]): values are decoded only when overdue-looking. */
  private readonly ttls = new Map<string, [string, number]>();
  private readonly preservation: SelfPreservation | undefined;
  private readonly now: () => number;
  private readonly state: ExpiryStats = { paused: false, overdue: 0, selfPreservation: false, tracked: 0, expired: 0, lastPassAt: 0 };
  private pausedLogged = false;

  constructor(
    private readonly liveness: LivenessTable,
    private readonly sources: ExpirySweepSources,
    private readonly options: ExpirySweepOptions,
    private readonly hooks: ExpirySweepHooks,
  ) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.passes = new PeriodicPass(options.passMs, () => this.guardedSweep());
    this.preservation = options.selfPreservation && new SelfPreservation(options.selfPreservation);
  }

  get stats(): Readonly<ExpiryStats> {
    return this.state;
  }

  start(): void {
    this.passes.start();
  }

  stop(): void {
    this.passes.stop();
  }

  /** One pass (the timer calls it; tests call it directly). */
  pass(): Promise<void> {
    return this.passes.runOnce();
  }

  private async guardedSweep(): Promise<void> {
    try {
      await this.sweep(this.now());
    } catch (err) {
      this.hooks.log('warn', `expiry pass failed (${(err as Error).message}); retrying next pass`);
    }
  }

  private async sweep(now: number): Promise<void> {
    const owned = this.sources.ownedLeases();
    const overdue: Array<{ key: string; leaseId: string; modRevision: string; ttlMs: number; lastHeard: number }> = [];
    let tracked = 0;
    this.sources.instancesOn(owned, (key, leaseId, modRevision, value, observedAt) => {
      tracked++;
      const lastHeard = Math.max(this.liveness.lastHeard(key), this.sources.responsibleSince(leaseId), observedAt, this.startedAt);
      if (now - lastHeard < MIN_TTL_MS) return;
      const cached = this.ttls.get(key);
      let ttlMs = cached && cached[0] === modRevision ? cached[1] : undefined;
      if (ttlMs === undefined) {
        ttlMs = (decodeRecord(value)?.ttl ?? 0) * 1000;
        if (ttlMs <= 0) return;
        this.ttls.set(key, [modRevision, ttlMs]);
      }
      if (now - lastHeard >= ttlMs) overdue.push({ key, leaseId, modRevision, ttlMs, lastHeard });
    });
    this.state.tracked = tracked;
    this.state.overdue = overdue.length;
    this.state.lastPassAt = now;
    if (this.ttls.size > tracked * 2 + 1_000) this.ttls.clear();
    this.liveness.prune(now, 600_000);

    let readFailed: string | undefined;
    try {
      await this.sources.exchange.refresh(this.sources.presentReplicas(), now);
    } catch (err) {
      readFailed = (err as Error).message;
    }
    const deletes: GuardedDelete[] = [];
    let gaps = 0;
    // Overdue here but heard by another replica is not silent: with heartbeats spread over replicas
    // (node agents behind a load balancer), most of an owner's instances are heard elsewhere only.
    let heardElsewhere = 0;
    for (const item of overdue) {
      const verdict = readFailed ? ({ expire: false, reason: 'gap' } as const) : this.sources.exchange.verdict(item.key, item.ttlMs, item.lastHeard, now);
      if (!verdict.expire && verdict.reason === 'heard') heardElsewhere++;
      if (verdict.expire) {
        const fence = this.sources.fence(item.leaseId);
        if (fence && item.modRevision !== '0') deletes.push({ key: item.key, modRevision: item.modRevision, fence });
      } else if (verdict.reason === 'gap') {
        gaps++;
      }
    }
    this.state.paused = gaps > 0;
    this.state.reason = gaps > 0 ? (readFailed ? `heard-sets unreadable: ${readFailed}` : "a present replica's heard-sets have a gap") : undefined;
    if (gaps > 0 && !this.pausedLogged) this.hooks.log('warn', `expiry paused: ${this.state.reason}; ${gaps} overdue instances kept until the exchange covers their TTL`);
    if (gaps === 0 && this.pausedLogged) this.hooks.log('info', 'expiry resumed');
    this.pausedLogged = gaps > 0;

    const silent = overdue.length - heardElsewhere;
    const change = this.preservation?.update(now, tracked, silent);
    this.state.selfPreservation = this.preservation?.active ?? false;
    if (change === 'entered') this.hooks.log('warn', `self-preservation: ${silent} of ${tracked} instances silent at once; holding their deletion`);
    else if (change) this.hooks.log('info', `self-preservation ${change}`);
    if (this.state.selfPreservation || deletes.length === 0) return;

    const deleted = await this.sources.deleteIfUnchanged(deletes);
    let count = 0;
    deleted.forEach((done, i) => {
      if (!done) return;
      count++;
      this.liveness.forget(deletes[i].key);
      this.ttls.delete(deletes[i].key);
    });
    this.state.expired += count;
    if (count) this.hooks.expired?.(count);
  }
}
