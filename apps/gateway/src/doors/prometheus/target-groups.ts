import { isIP } from 'node:net';
import { fromRegistryName, ResolvedInstance } from '@app/registry';

/** One entry of Prometheus's http_sd answer. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * A service's instances as http_sd target groups: instances with the same labels share a group. The
 * labels are plain target labels (no `__meta_` prefix, so they reach the scraped series without
 * relabelling): `service`, `zone`, `status`, `tags` and `metadata_<key>`. Tags are joined the way
 * Prometheus's Consul discovery joins them, with a comma before, between and after (`,a,b,`), so a
 * relabel regex `.*,canary,.*` matches one tag exactly. Label names allow only `[A-Za-z0-9_]`: other
 * characters of a metadata key become `_` (keys are taken in order, so a clash keeps the last one).
 */
export function targetGroupsOf(service: string, instances: readonly ResolvedInstance[]): TargetGroup[] {
  const groups = new Map<string, TargetGroup>();
  for (const instance of instances) {
    const labels = labelsOf(service, instance);
    const key = JSON.stringify(labels);
    const group = groups.get(key) ?? { targets: [], labels };
    group.targets.push(targetOf(instance));
    groups.set(key, group);
  }
  return [...groups.values()];
}

function labelsOf(service: string, instance: ResolvedInstance): Record<string, string> {
  const labels: Record<string, string> = { service: fromRegistryName(service), status: instance.status };
  if (instance.zone !== undefined) labels.zone = instance.zone;
  if (instance.tags.length) labels.tags = `,${instance.tags.join(',')},`;
  for (const key of Object.keys(instance.metadata).sort()) labels[`metadata_${key.replace(/[^A-Za-z0-9_]/g, '_')}`] = instance.metadata[key];
  return labels;
}

/** `host:port`, an IPv6 address in brackets. */
function targetOf({ address, port }: ResolvedInstance): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
