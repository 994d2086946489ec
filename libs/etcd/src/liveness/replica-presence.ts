import type { EtcdConnection } from '../etcd-connection';
import { KeepAliveStreams } from '../keepalive-streams';
import type { RegistryStore } from '../registry-store';

export interface ReplicaPresenceOptions {
  replicaId: string;
  /** What the key says about the replica (JSON): its lease model and pass, for replicas of another release. */
  describe: () => Record<string, unknown>;
  /** The presence lease's TTL: how long after a replica dies the others notice. */
  ttlSeconds?: number;
  /** Renewal period (a third of the TTL: one lost renewal is not an absence). */
  renewEveryMs?: number;
  now?: () => number;
}

export const PRESENCE_TTL_SECONDS = 10;

/**
 * This replica's presence key, `<prefix>gateway/replicas/<replicaId>`, on a small lease of its own: it
 * exists while the replica runs and vanishes within PRESENCE_TTL_SECONDS of the replica dying. Replicas
 * that expire instances themselves (shared leases, issue 21) count the present replicas and wait for a
 * heard-set (HeardSetPublisher) from each before deleting anything, so a replica of either release is
 * never missed. Cost on etcd: one key and a renewal every 3 s per replica, whatever the instances.
 *
 * Renewed on a LeaseKeepAlive stream of its own (one per replica, on a pooled connection, so no extra
 * Authenticate). A renewal answered TTL 0 (the lease expired while etcd was unreachable) grants a new
 * lease and writes the key again at the next tick.
 */
export class ReplicaPresence {
  private leaseId: string | undefined;
  private confirmedAt = 0;
  private publishing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly streams: KeepAliveStreams;
  private readonly ttlSeconds: number;
  private readonly now: () => number;
  private lastError: string | undefined;
  private left = false;

  constructor(
    private readonly store: RegistryStore,
    connection: EtcdConnection,
    private readonly options: ReplicaPresenceOptions,
    private readonly hooks: { log?(level: 'warn' | 'info', message: string): void } = {},
  ) {
    this.ttlSeconds = options.ttlSeconds ?? PRESENCE_TTL_SECONDS;
    this.now = options.now ?? Date.now;
    this.streams = new KeepAliveStreams([connection], {
      renewalAnswered: (leaseId, ttl) => this.answered(leaseId, ttl),
      streamReset: () => undefined,
    });
  }

  get key(): string {
    return this.store.layout.replicaKey(this.options.replicaId);
  }

  /** etcd confirmed the key (written or renewed) less than a TTL ago. */
  isPresent(now = this.now()): boolean {
    return this.confirmedAt > 0 && now - this.confirmedAt < this.ttlSeconds * 1000;
  }

  /** Writes the key (now, and again whenever it is lost) and keeps it alive. */
  start(): Promise<void> {
    this.streams.start();
    this.timer ??= setInterval(() => this.tick(), this.options.renewEveryMs ?? Math.floor((this.ttlSeconds * 1000) / 3));
    this.timer.unref();
    return this.publish();
  }

  /**
   * Deletes the key now, so the others see the replica leave at once. Its lease is left to expire (a
   * graceful stop revokes no lease: ops-process asserts it; the lease carries no key any more).
   */
  async leave(): Promise<void> {
    this.left = true;
    clearInterval(this.timer);
    this.timer = undefined;
    this.streams.close();
    await this.publishing;
    const leaseId = this.leaseId;
    this.leaseId = undefined;
    this.confirmedAt = 0;
    // At most a second: a shutdown must not wait on a frozen etcd for this (the key expires with its lease).
    if (leaseId) await Promise.race([this.store.delete(this.key).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
  }

  private tick(): void {
    if (!this.leaseId) void this.publish();
    else this.streams.send(this.leaseId, 0);
  }

  private answered(leaseId: string, ttlSeconds: number): void {
    if (leaseId !== this.leaseId) return;
    if (ttlSeconds > 0) {
      this.confirmedAt = this.now();
      return;
    }
    this.hooks.log?.('warn', `presence lease ${leaseId} is gone (etcd unreachable for longer than its ${this.ttlSeconds} s TTL?); writing the presence key again`);
    this.leaseId = undefined;
    void this.publish();
  }

  private publish(): Promise<void> {
    if (this.left) return Promise.resolve();
    this.publishing ??= (async () => {
      try {
        const leaseId = await this.store.grantLease(this.ttlSeconds);
        await this.store.put(this.key, JSON.stringify({ replicaId: this.options.replicaId, ...this.options.describe() }), leaseId);
        this.leaseId = leaseId;
        this.confirmedAt = this.now();
        if (this.lastError) this.hooks.log?.('info', 'presence key written again');
        this.lastError = undefined;
      } catch (err) {
        const message = (err as Error).message;
        if (message !== this.lastError) this.hooks.log?.('warn', `cannot write the presence key (${message}); retrying every tick`);
        this.lastError = message;
      }
    })().finally(() => (this.publishing = undefined));
    return this.publishing;
  }
}
