import { Instance } from './types';

export type PickStrategy = 'round-robin' | 'weighted' | 'zone';

export interface PickOptions {
  /** Default `round-robin`. `zone` is round-robin over `zone`'s instances when there are any. */
  strategy?: PickStrategy;
  /** Preferred zone: only its instances are picked while it has any (required by the `zone` strategy). */
  zone?: string;
}

/**
 * Chooses one instance per call. State (the round-robin position, the weighted credits) lives in the
 * Picker, so keep one per service and strategy. Instances come in the gateway's id order, which makes
 * round-robin fair across changing answers.
 */
export class Picker {
  private next = 0;
  /** Smooth weighted round-robin credits by instance id (nginx's algorithm): exact shares, no bursts. */
  private readonly credits = new Map<string, number>();

  constructor(private readonly options: PickOptions = {}) {
    if (options.strategy === 'zone' && !options.zone) throw new TypeError('the zone strategy needs a zone');
  }

  pick(instances: readonly Instance[]): Instance | undefined {
    const candidates = this.preferZone(instances);
    if (!candidates.length) return undefined;
    if (this.options.strategy === 'weighted') return this.weighted(candidates);
    return candidates[this.next++ % candidates.length];
  }

  private preferZone(instances: readonly Instance[]): readonly Instance[] {
    if (!this.options.zone) return instances;
    const local = instances.filter((i) => i.zone === this.options.zone);
    return local.length ? local : instances;
  }

  /** Weight 0 means "no traffic" while any instance has a weight; if none has, all share equally. */
  private weighted(instances: readonly Instance[]): Instance {
    const weightOf = (i: Instance): number => (instances.some((x) => x.weight > 0) ? Math.max(0, i.weight) : 1);
    for (const id of this.credits.keys()) if (!instances.some((i) => i.id === id)) this.credits.delete(id);
    let total = 0;
    let best: Instance | undefined;
    for (const instance of instances) {
      const weight = weightOf(instance);
      if (weight === 0) continue;
      total += weight;
      const credit = (this.credits.get(instance.id) ?? 0) + weight;
      this.credits.set(instance.id, credit);
      if (!best || credit > this.credits.get(best.id)!) best = instance;
    }
    this.credits.set(best!.id, this.credits.get(best!.id)! - total);
    return best!;
  }
}
