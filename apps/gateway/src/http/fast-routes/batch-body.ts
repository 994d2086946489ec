import { HEARTBEAT_BATCH_LIMITS, isValidName } from '@app/registry';
import { hasExactly, isPlainObject } from './plain-body';

export interface InstanceRef {
  service: string;
  id: string;
}

/**
 * The common case of a valid `POST /v1/heartbeats` body, checked by hand: class-validator takes
 * milliseconds for 1000 refs, longer than heartbeating them. Returns undefined for anything that is
 * not plainly valid, and the caller then runs the body through the validation pipe, which answers it
 * exactly as for any other route (or accepts it). So this check may refuse more than the pipe (an
 * extra key, an odd prototype), never less: every body it accepts the pipe accepts as well.
 */
export function plainBatchRefs(body: unknown): readonly InstanceRef[] | undefined {
  if (!isPlainObject(body) || !hasExactly(body, 1) || !('instances' in body)) return undefined;
  const { instances } = body as { instances: unknown };
  if (!Array.isArray(instances) || instances.length < 1 || instances.length > HEARTBEAT_BATCH_LIMITS.maxInstances) return undefined;
  for (const ref of instances as unknown[]) {
    if (!isPlainObject(ref) || !hasExactly(ref, 2)) return undefined;
    const { service, id } = ref as Partial<InstanceRef>;
    if (!isValidName(service) || !isValidName(id)) return undefined;
  }
  return instances as InstanceRef[];
}
