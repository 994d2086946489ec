import { InstanceStatus, ResolvedInstance } from '@app/registry';

/** Resolve filters, Consul/Eureka style. Every given criterion must hold (AND). */
export interface InstanceFilter {
  /** Tags the instance must all carry. */
  tags?: readonly string[];
  zone?: string;
  /** `key=value` pairs of metadata the instance must all match exactly. */
  metadata?: ReadonlyArray<readonly [string, string]>;
  /** One status, or 'all'. Default: UP only, so draining or down instances get no new traffic. */
  status?: InstanceStatus | 'all';
}

export function filterInstances(instances: readonly ResolvedInstance[], filter: InstanceFilter): ResolvedInstance[] {
  const status = filter.status ?? 'UP';
  return instances.filter(
    (instance) =>
      (status === 'all' || instance.status === status) &&
      (filter.zone === undefined || instance.zone === filter.zone) &&
      (filter.tags ?? []).every((tag) => instance.tags.includes(tag)) &&
      (filter.metadata ?? []).every(([key, value]) => Object.prototype.hasOwnProperty.call(instance.metadata, key) && instance.metadata[key] === value),
  );
}
