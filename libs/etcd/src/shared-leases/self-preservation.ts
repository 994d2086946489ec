/**
 * Self-preservation, as Eureka has it: when more than `threshold` of the instances a replica renews go
 * silent at once, the likelier cause is the network between pods and gateways (or the gateways
 * themselves), not that many pods died together. Letting all those leases run out would empty the
 * registry of pods that are probably alive, so the replica keeps renewing them, for at most `maxMs`.
 *
 * The trade-off (README): while it holds, a real mass death is reported late, by up to `maxMs`.
 * Instances that deregister explicitly are not tracked any more, so a planned scale-down never counts
 * as silence. After the bound passes, it stays off until the silent share has dropped below the
 * threshold once: a silence that outlasts the bound is believed.
 */
export interface SelfPreservationOptions {
  /** Share of tracked instances silent at once (0-1) that turns it on; 0 or >= 1 = never. */
  threshold: number;
  /** Longest hold, ms. */
  maxMs: number;
  /** Fewer tracked instances than this never turn it on (one pod of two is not a "mass"). */
  minInstances?: number;
}

export type SelfPreservationChange = 'entered' | 'released' | 'expired' | undefined;

export class SelfPreservation {
  private on = false;
  private since = 0;
  private exhausted = false;

  constructor(private readonly options: SelfPreservationOptions) {}

  get active(): boolean {
    return this.on;
  }

  /** Feeds one observation: `silent` of `tracked` instances have not heartbeated for a while. */
  update(now: number, tracked: number, silent: number): SelfPreservationChange {
    const { threshold, maxMs } = this.options;
    const massSilence = threshold > 0 && threshold < 1 && tracked >= (this.options.minInstances ?? 10) && silent > threshold * tracked;
    if (!massSilence) {
      this.exhausted = false;
      if (!this.on) return undefined;
      this.on = false;
      return 'released';
    }
    if (this.on && now - this.since >= maxMs) {
      this.on = false;
      this.exhausted = true;
      return 'expired';
    }
    if (this.on || this.exhausted) return undefined;
    this.on = true;
    this.since = now;
    return 'entered';
  }
}
