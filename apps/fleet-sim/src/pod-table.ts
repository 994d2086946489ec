/**
 * The fleet of a scale run as a few typed arrays instead of one object per pod: at 1,000,000 pods,
 * `makePods` objects (three strings each) cost ~250 MB of the generator's heap, which then competes
 * with the replicas under test for the machine. A pod is its index; its service, id and key are
 * derived from it (the same names `makePods` gives), and a `SimPod` is made only for a call.
 */
import { SimPod } from './fleets/fleet-driver';

export class PodTable {
  /** 1 once the gateway answered the pod's registration 2xx; 0 again after a 404 / not_found. */
  readonly registered: Uint8Array;
  /** When the pod's last registration was answered (ms since the epoch); 0 = never. */
  readonly registeredAt: Float64Array;

  constructor(
    readonly count: number,
    readonly services: number,
    readonly prefix: string,
  ) {
    this.registered = new Uint8Array(count);
    this.registeredAt = new Float64Array(count);
  }

  service(i: number): string {
    return `sim-${i % this.services}`;
  }

  id(i: number): string {
    return `pod-${i}`;
  }

  key(i: number): string {
    return `${this.prefix}services/${this.service(i)}/${this.id(i)}`;
  }

  /** The pod index of an instance key of this fleet (`.../pod-<n>`), or -1 for any other key. */
  indexOfKey(key: string): number {
    const at = key.lastIndexOf('/pod-');
    if (at < 0 || !key.startsWith(this.prefix)) return -1;
    const n = Number(key.slice(at + 5));
    return Number.isInteger(n) && n >= 0 && n < this.count ? n : -1;
  }

  markRegistered(i: number, at: number): void {
    this.registered[i] = 1;
    this.registeredAt[i] = at;
  }

  /** A short-lived view for a driver call; `registered` reads and writes the table. */
  pod(i: number): SimPod {
    const registered = this.registered;
    return {
      index: i,
      service: this.service(i),
      id: this.id(i),
      key: this.key(i),
      get registered() {
        return registered[i] === 1;
      },
      set registered(v: boolean) {
        registered[i] = v ? 1 : 0;
      },
    };
  }
}

/** Runs `task(i)` for every i in [from, to) with at most `concurrency` in flight. */
export async function forEachIndexLimited(from: number, to: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, to - from)) }, async () => {
    while (next < to) await task(next++);
  });
  await Promise.all(workers);
}
