/** What ConsulServiceIds reads the registry through (ResolveService's view, in the door). */
export interface RegistryServices {
  services(): Promise<string[]>;
  /** The ids of a service's instances that were registered through the Consul door. */
  consulIds(service: string): Promise<string[]>;
}

export interface ConsulServiceIdsOptions {
  /**
   * Quiet time between two passes over the registry: a flood of unknown IDs costs at most one pass
   * per this period (a pass is O(instances), ~tens of ms at 100k).
   */
  minGapMs: number;
  /**
   * Passes an unknown ID waits for before it is unknown: a registration made through another replica
   * a moment ago may reach this replica's view (its watch) just after the first pass.
   */
  passesPerMiss: number;
  /** learn()t IDs a pass keeps although its view does not show them yet (the watch delivers writes a moment later). */
  keepLearntMs: number;
}

export const DEFAULT_SERVICE_IDS_OPTIONS: ConsulServiceIdsOptions = { minGapMs: 250, passesPerMiss: 2, keepLearntMs: 10_000 };

/**
 * Consul addresses an instance by its service ID alone (deregister/{id}, check/pass/service:{id}),
 * the registry by service and id: this maps a (registry-encoded) Consul ID to its service. An ID
 * registered through this replica is known at once; one registered through another replica (a
 * client's calls may land on any replica) is found by a pass over this replica's view of the
 * registry, which then knows every ID at once. Passes run one at a time; callers that miss during a
 * pass share the one after it.
 */
export class ConsulServiceIds {
  private serviceOf = new Map<string, string>();
  private readonly learntAt = new Map<string, number>();
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private lastEndedAt = -Infinity;

  constructor(
    private readonly registry: RegistryServices,
    private readonly options: ConsulServiceIdsOptions = DEFAULT_SERVICE_IDS_OPTIONS,
    private readonly now: () => number = Date.now,
    private readonly delay: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {}

  learn(id: string, service: string): void {
    this.serviceOf.set(id, service);
    this.learntAt.set(id, this.now());
  }

  forget(id: string): void {
    this.serviceOf.delete(id);
    this.learntAt.delete(id);
  }

  /** The service known for `id` here, without looking further. */
  known(id: string): string | undefined {
    return this.serviceOf.get(id);
  }

  /** The service of `id`, looking through the registry (passes that start after this call) if it is not known here. */
  async find(id: string): Promise<string | undefined> {
    for (let pass = 0; pass < this.options.passesPerMiss && !this.serviceOf.has(id); pass++) await this.freshPass();
    return this.serviceOf.get(id);
  }

  /** Settles when a pass that started after this call has ended. */
  private freshPass(): Promise<void> {
    if (this.next) return this.next;
    const after = (this.running ?? Promise.resolve()).catch(() => undefined);
    const pass: Promise<void> = after.then(async () => {
      const quiet = this.lastEndedAt + this.options.minGapMs - this.now();
      if (quiet > 0) await this.delay(quiet);
      // From here on, a caller that misses needs the pass after this one.
      this.running = pass;
      this.next = undefined;
      try {
        await this.readAll();
      } finally {
        this.lastEndedAt = this.now();
        if (this.running === pass) this.running = undefined;
      }
    });
    this.next = pass;
    return pass;
  }

  /** Replaces the map, so IDs deregistered through other replicas are dropped here too. */
  private async readAll(): Promise<void> {
    const found = new Map<string, string>();
    for (const service of await this.registry.services()) {
      for (const id of await this.registry.consulIds(service)) found.set(id, service);
    }
    const now = this.now();
    for (const [id, at] of this.learntAt) {
      const service = this.serviceOf.get(id);
      if (now - at > this.options.keepLearntMs || service === undefined) this.learntAt.delete(id);
      else found.set(id, service);
    }
    this.serviceOf = found;
  }
}
