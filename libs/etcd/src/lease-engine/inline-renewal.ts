import { LeaseSlots } from './lease-slots';
import { LeaseTable, LeaseTableHooks, RenewalChannel } from './lease-table';
import { RenewalScheduler, RenewalTransport } from './renewal-scheduler';

/**
 * The lease engine's two halves wired in ONE thread, synchronously: what the worker does, minus the
 * thread. For unit tests with a fake clock (and tools); the gateway itself always uses LeaseEngine.
 */
export class InlineRenewal implements RenewalChannel {
  readonly slots = new LeaseSlots();
  readonly table: LeaseTable;
  readonly scheduler: RenewalScheduler;
  private silent: number[] = [];

  constructor(transport: RenewalTransport, hooks: LeaseTableHooks = {}, tickMs = 100, maxInFlight = 10_000) {
    this.table = new LeaseTable(this.slots, this, hooks);
    this.scheduler = new RenewalScheduler(
      transport,
      {
        heartbeatAt: (slot) => this.slots.heartbeatAt(slot),
        renewed: (slot, at) => this.slots.setRenewedAt(slot, at),
        lost: (slot, leaseId, at) => this.slots.markLost(slot, BigInt(leaseId), at),
        silent: (slot) => this.silent.push(slot),
      },
      { tickMs, maxInFlight },
    );
  }

  /** A scheduler pass at `now`, then what the worker would report back (silent pods). */
  renewDueLeases(now: number): number {
    const sent = this.scheduler.renewDueLeases(now);
    if (this.silent.length) this.table.onSilent(this.silent.splice(0), now);
    return sent;
  }

  onAnswer(leaseId: string, ttlSeconds: number, now: number): void {
    this.scheduler.onAnswer(leaseId, ttlSeconds, now);
  }

  addSegment(): void {
    // Same thread, same LeaseSlots: nothing to hand over.
  }

  track(slot: number, leaseId: string, ttlMs: number, renewedAt: number): void {
    this.scheduler.track(slot, leaseId, ttlMs, renewedAt);
  }

  untrack(slot: number): void {
    this.scheduler.untrack(slot);
    this.slots.clear(slot);
    this.table.onReleased([slot]);
  }

  replace(slot: number, leaseId: string, renewedAt: number): void {
    this.slots.markLost(slot, 0n, 0);
    this.scheduler.replace(slot, leaseId, renewedAt);
  }
}
