import { isValidName } from './names';

export interface InstanceAddress {
  service: string;
  id: string;
}

/** A replica's id: lowercase hex, as RegistryRuntime makes it (kept narrow: it becomes a key and a Redis key). */
const REPLICA_ID = /^[0-9a-f]{1,32}$/;

/**
 * Where the gateway's keys live in etcd: instances at `<prefix>services/<service>/<id>`, the gateway's
 * own bookkeeping under `<prefix>gateway/` (one presence key per replica at `gateway/replicas/<id>`).
 * Every key the gateway writes is built here, from validated names, so nothing can be written outside
 * the prefix.
 */
export class KeyLayout {
  readonly servicesRoot: string;
  /** The gateway's own keys (never instances: parseInstanceKey rejects them). */
  readonly gatewayRoot: string;

  constructor(readonly prefix: string) {
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) {
      throw new Error(`etcd prefix must start and end with "/": ${prefix}`);
    }
    this.servicesRoot = `${prefix}services/`;
    this.gatewayRoot = `${prefix}gateway/`;
  }

  /** A replica's presence key (ReplicaPresence): there while the replica runs, on a short lease of its own. */
  replicaKey(replicaId: string): string {
    if (!REPLICA_ID.test(replicaId)) throw new Error(`refusing to build a key from an invalid replica id: ${replicaId}`);
    return `${this.gatewayRoot}replicas/${replicaId}`;
  }

  /** A shared lease's record (owner replica, lease class), written with that lease: it vanishes with it. */
  leaseRecordKey(leaseId: string): string {
    if (!/^[1-9][0-9]{0,19}$/.test(leaseId)) throw new Error(`refusing to build a key from an invalid lease id: ${leaseId}`);
    return `${this.gatewayRoot}leases/${leaseId}`;
  }

  /** The inverse of replicaKey / leaseRecordKey; undefined for any other key. */
  parseGatewayKey(key: string): { kind: 'replica' | 'lease'; id: string } | undefined {
    if (!key.startsWith(this.gatewayRoot)) return undefined;
    const rest = key.slice(this.gatewayRoot.length);
    if (rest.startsWith('replicas/') && REPLICA_ID.test(rest.slice(9))) return { kind: 'replica', id: rest.slice(9) };
    if (rest.startsWith('leases/') && /^[1-9][0-9]{0,19}$/.test(rest.slice(7))) return { kind: 'lease', id: rest.slice(7) };
    return undefined;
  }

  instanceKey(service: string, id: string): string {
    if (!isValidName(service) || !isValidName(id)) {
      throw new Error(`refusing to build a key from an invalid name: ${service}/${id}`);
    }
    return `${this.servicesRoot}${service}/${id}`;
  }

  servicePrefix(service: string): string {
    if (!isValidName(service)) throw new Error(`refusing to build a key from an invalid name: ${service}`);
    return `${this.servicesRoot}${service}/`;
  }

  /** The inverse of instanceKey; undefined for keys that are not instance keys. */
  parseInstanceKey(key: string): InstanceAddress | undefined {
    if (!key.startsWith(this.servicesRoot)) return undefined;
    const rest = key.slice(this.servicesRoot.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return undefined;
    const service = rest.slice(0, slash);
    const id = rest.slice(slash + 1);
    return isValidName(service) && isValidName(id) ? { service, id } : undefined;
  }
}

/** etcd's range_end for "every key with this prefix": the prefix with its last byte incremented. */
export function prefixRangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
