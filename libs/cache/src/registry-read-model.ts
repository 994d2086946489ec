import type { RegistryEvent } from '@app/etcd';
import { decodeRecord, InstanceRecord, RegistryUnavailableError, ResolvedInstance } from '@app/registry';
import { ChangeWaiters, WaitOutcome } from './change-waiters';
import { SharedParts } from './shared-parts';

/** What the read model derives its answers from (InstanceDirectory fits). */
export interface DirectorySource {
  /** The initial read of the registry is applied: before it, nothing is known. */
  readonly isSynced: boolean;
  serviceCounts(): Array<{ service: string; instances: number }>;
  instancesOf(service: string): Iterable<[string, string]>;
  instanceCount(service: string): number;
}

/** What the read model needs to know about the watch that feeds it (RegistryWatch fits). */
export interface WatchState {
  /** When etcd last confirmed that the delivered changes are current (epoch ms); 0 while it is down. */
  readonly confirmedAt: number;
}

export interface RegistryReadModelOptions {
  /** An answer the watch has not confirmed for this long is marked `stale` (the watch is down or silent). */
  staleAfterMs: number;
  /** How long a client waits before retrying while the first read of the registry is not done. */
  startingRetryAfterSeconds?: number;
  now?: () => number;
}

export interface ServiceView {
  service: string;
  /** The etcd revision of the last change to this service this replica applied (or of the read it came from). */
  revision: number;
  /** The same revision: blocking queries compare it (X-Registry-Index, X-Consul-Index). It never goes back. */
  index: number;
  stale: boolean;
  /** Every instance, UP or not, in id order. Frozen: shared by every caller until the service changes. */
  instances: readonly ResolvedInstance[];
}

export interface ServiceListView {
  revision: number;
  index: number;
  stale: boolean;
  services: Array<{ service: string; instances: number }>;
}

/** What the read model knows of one service with instances. */
interface ServiceState {
  /** Revision of the last change to the service (see ServiceView.revision). */
  index: number;
  /** The decoded view, sorted by id and frozen: built on the first lookup, then patched by the watch's events. */
  instances?: readonly ResolvedInstance[];
}

/** Error raised before the first read of the registry: readiness says `starting` as well. */
export class RegistryStartingError extends RegistryUnavailableError {
  constructor(retryAfterSeconds: number) {
    super('the gateway is starting: it has not read the registry from etcd yet; retry shortly', retryAfterSeconds);
  }
}

const LIST = 'services';

/**
 * The one read model of a replica: lookups, the service list, filters and blocking queries are all
 * answered from the InstanceDirectory that the initial read and the registry watch keep current, at
 * the revision the watch reached. Once synced, no lookup reads etcd (Kubernetes' watch cache, KEP-2340):
 * while the watch is down answers come from the same memory, marked `stale`; a delete event removes
 * the one instance it names.
 *
 * A service's decoded view (sorted, frozen) is built on its first lookup and then patched by the
 * watch's events, copy-on-write, so a lookup of an unchanged service allocates nothing and the
 * encoded-answer cache can key on the array's identity. `index` moves only on a real change (an
 * identical re-put is none), which is what wakes a blocking query.
 */
export class RegistryReadModel {
  private readonly states = new Map<string, ServiceState>();
  /** Revision of the last change to the service list (a service appeared, went, or its count moved). */
  private listIndex = 0;
  private listView: ServiceListView['services'] | undefined;
  /**
   * The index of every service without a state: the revision of the last read of the registry, or of
   * the last delete that emptied a service (its state is dropped then). Only grows, and is never below
   * an index a dropped state had: so a service's index never goes back.
   */
  private baseIndex = 0;
  private readonly changes = new ChangeWaiters();
  /** Tags, metadata, zones and statuses shared by the decoded instances (see SharedParts). */
  private readonly parts = new SharedParts();
  private readonly now: () => number;

  constructor(
    private readonly directory: DirectorySource,
    private readonly watch: WatchState,
    private readonly options: RegistryReadModelOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The directory was (re)built from one read at `revision` (the initial read, or a rebuild after etcd
   * compacted what the watch missed): every decoded view is dropped and every service and the list
   * take that revision as their index (it is newer than any change applied before), and every blocking
   * query wakes to read the rebuilt state once.
   */
  resynced(revision: number): void {
    this.states.clear();
    this.baseIndex = Math.max(this.baseIndex, revision);
    this.listIndex = Math.max(this.listIndex, revision);
    this.listView = undefined;
    this.changes.notifyAll();
  }

  /** The watch's events, in revision order, after the directory applied them. */
  applyEvents(events: readonly RegistryEvent[]): void {
    for (const event of events) {
      const record = event.type === 'put' && event.value !== undefined ? decodeRecord(event.value) : undefined;
      if (event.type === 'delete' || event.created) this.listChanged(event.revision);
      if (this.patch(event, record)) this.changes.notify(`svc:${event.service}`);
    }
  }

  /**
   * The service's instances as this replica knows them. Throws RegistryStartingError before the first
   * read of the registry (answering `[]` then would tell a client a known service is empty).
   */
  resolve(service: string): ServiceView {
    this.assertSynced();
    const state = this.states.get(service);
    const index = state?.index || this.baseIndex;
    const instances = state?.instances ?? this.materialize(service, state);
    return { service, revision: index, index, stale: this.isStale(), instances };
  }

  listServices(): ServiceListView {
    this.assertSynced();
    this.listView ??= this.directory.serviceCounts().sort((a, b) => compareIds(a.service, b.service));
    const index = this.listIndex || this.baseIndex;
    return { revision: index, index, stale: this.isStale(), services: this.listView };
  }

  /**
   * Parks the caller until the service's index moves, `timeoutMs` passes, `signal` aborts or close().
   * Costs no etcd call: the watch's events wake it. Call it in the same synchronous step as the
   * resolve() whose index it compares, so no change slips between.
   */
  waitForServiceChange(service: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return this.changes.wait(`svc:${service}`, timeoutMs, signal);
  }

  /** waitForServiceChange() for the services list (a service appears, disappears or changes its count). */
  waitForListChange(timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return this.changes.wait(LIST, timeoutMs, signal);
  }

  /** For readiness and the dashboard: services with decoded views in memory. */
  get viewsInMemory(): number {
    let views = 0;
    for (const state of this.states.values()) if (state.instances) views++;
    return views;
  }

  /** Ends every parked wait with 'closed' (shutdown answers them). */
  close(): void {
    this.changes.close();
  }

  private assertSynced(): void {
    if (!this.directory.isSynced) throw new RegistryStartingError(this.options.startingRetryAfterSeconds ?? 1);
  }

  /** Whether answers are `stale` now: the watch has not confirmed the directory for `staleAfterMs`. */
  isStale(): boolean {
    return this.now() - this.watch.confirmedAt > this.options.staleAfterMs;
  }

  private listChanged(revision: number): void {
    this.listIndex = Math.max(this.listIndex, revision);
    this.listView = undefined;
    this.changes.notify(LIST);
  }

  /** Applies one event to the service's state; whether the service's content changed. */
  private patch(event: RegistryEvent, record: InstanceRecord | undefined): boolean {
    let state = this.states.get(event.service);
    // Without a decoded view there is nothing to compare with: any event is a change (the view is
    // built from the directory on the next lookup).
    if (state?.instances && !this.patchView(state, state.instances, event, record)) return false;
    if (this.directory.instanceCount(event.service) === 0) {
      // States are kept only for services with instances: an emptied one falls back to baseIndex.
      this.states.delete(event.service);
      this.baseIndex = Math.max(this.baseIndex, event.revision);
    } else {
      if (!state) this.states.set(event.service, (state = { index: 0 }));
      state.index = Math.max(state.index, event.revision);
    }
    return true;
  }

  /** Patches a decoded view, copy-on-write; whether its content changed. */
  private patchView(state: ServiceState, view: readonly ResolvedInstance[], event: RegistryEvent, record: InstanceRecord | undefined): boolean {
    const at = findId(view, event.id);
    // A delete, or a value that is not an instance record (another version, a hand edit): removes it.
    if (!record) {
      if (at < 0) return false;
      state.instances = Object.freeze(view.filter((_, i) => i !== at));
      return true;
    }
    const instance = toResolved(event.id, record, this.parts);
    // A write that changes nothing a lookup shows (a PATCH to the status it has, an identical re-put)
    // is no change. Compared decoded: the same record can be stored with its fields in another order.
    if (at >= 0 && JSON.stringify(view[at]) === JSON.stringify(instance)) return false;
    const next = view.slice();
    if (at >= 0) next[at] = instance;
    else next.splice(-at - 1, 0, instance);
    state.instances = Object.freeze(next);
    return true;
  }

  private materialize(service: string, state: ServiceState | undefined): readonly ResolvedInstance[] {
    const instances: ResolvedInstance[] = [];
    for (const [id, value] of this.directory.instancesOf(service)) {
      const record = decodeRecord(value);
      // A value that is not an instance record (another version, a hand edit) is no instance.
      if (record) instances.push(toResolved(id, record, this.parts));
    }
    if (instances.length === 0) return EMPTY;
    instances.sort((a, b) => compareIds(a.id, b.id));
    if (!state) this.states.set(service, (state = { index: this.baseIndex }));
    state.instances = Object.freeze(instances);
    return state.instances;
  }
}

const EMPTY: readonly ResolvedInstance[] = Object.freeze([]);

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Binary search by id: the index, or -(insertion point) - 1. */
function findId(instances: readonly ResolvedInstance[], id: string): number {
  let low = 0;
  let high = instances.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const order = compareIds(instances[mid].id, id);
    if (order === 0) return mid;
    if (order < 0) low = mid + 1;
    else high = mid - 1;
  }
  return -low - 1;
}

function toResolved(id: string, record: InstanceRecord, parts: SharedParts): ResolvedInstance {
  const { address, port, metadata, tags, zone, weight, status, registeredAt } = record;
  return { id, address, port, metadata: parts.object(metadata), tags: parts.object(tags), zone: parts.string(zone), weight, status: parts.string(status), registeredAt };
}
