/** Far longer than the watch takes to deliver a write to this replica's view. */
const RECENT_MS = 10_000;

/** What ConsulServiceIds reads the registry through (ResolveService's view, in the door). */
export interface RegistryServices {
  services(): Promise<string[]>;
  /** The ids of a service's instances that were registered through the Consul door. */
  consulIds(service: string): Promise<string[]>;
}

/**
 * Consul addresses an instance by its service ID alone (deregister/{id}, check/pass/service:{id}),
 * the registry by service and id: this maps a (registry-encoded) Consul ID to its service. An ID
 * registered through this replica is known at once; one registered through another replica (a
 * client's calls may land on any replica) is found by one pass over this replica's view of the
 * registry, which then learns every ID at once. Passes run one at a time and at most once per
 * `minRefreshMs`, so unknown IDs cannot turn into a scan per request.
 */
export class ConsulServiceIds {
  private serviceOf = new Map<string, string>();
  /**
   * When IDs were learn()t here: a pass keeps those of the last RECENT_MS, because the view it reads
   * may not show a registration yet (the watch delivers it a moment after the write).
   */
  private readonly learntAt = new Map<string, number>();
  private refreshing: Promise<void> | undefined;
  private refreshedAt = -Infinity;

  constructor(
    private readonly registry: RegistryServices,
    private readonly minRefreshMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.serviceOf.size;
  }

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

  /** The service of `id`, looking through the registry if this replica has not learnt it yet. */
  async find(id: string): Promise<string | undefined> {
    const known = this.serviceOf.get(id);
    if (known !== undefined) return known;
    await this.refresh();
    return this.serviceOf.get(id);
  }

  private refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (this.now() - this.refreshedAt < this.minRefreshMs) return Promise.resolve();
    this.refreshing = this.readAll().finally(() => {
      this.refreshedAt = this.now();
      this.refreshing = undefined;
    });
    return this.refreshing;
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
      if (now - at > RECENT_MS || service === undefined) this.learntAt.delete(id);
      else found.set(id, service);
    }
    this.serviceOf = found;
  }
}
