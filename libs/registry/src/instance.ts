export const INSTANCE_STATUSES = ['UP', 'DRAINING', 'DOWN'] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

/** What a pod tells us about itself; everything but address and port is optional on the wire. */
export interface InstanceRegistration {
  address: string;
  port: number;
  ttl: number;
  metadata: Record<string, string>;
  tags: string[];
  zone?: string;
  weight: number;
  status: InstanceStatus;
}

/** The JSON value stored under an instance key in etcd. */
export interface InstanceRecord extends InstanceRegistration {
  service: string;
  id: string;
  registeredAt: string;
}

/**
 * One instance as resolvers see it. `registeredAt` (time of the last registration) is optional:
 * snapshots cached in Redis by an older gateway version do not carry it.
 */
export type ResolvedInstance = Omit<InstanceRecord, 'service' | 'ttl' | 'registeredAt'> & { registeredAt?: string };

export function encodeRecord(record: InstanceRecord): string {
  return JSON.stringify(record);
}

/** Values that are not ours (written by hand, older formats) are skipped, never crash a resolve. */
export function decodeRecord(value: string): InstanceRecord | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<InstanceRecord>;
    if (typeof parsed.service !== 'string' || typeof parsed.id !== 'string') return undefined;
    if (typeof parsed.address !== 'string' || typeof parsed.port !== 'number') return undefined;
    return {
      service: parsed.service,
      id: parsed.id,
      address: parsed.address,
      port: parsed.port,
      ttl: parsed.ttl ?? 30,
      metadata: parsed.metadata ?? {},
      tags: parsed.tags ?? [],
      zone: parsed.zone,
      weight: parsed.weight ?? 100,
      status: parsed.status ?? 'UP',
      registeredAt: parsed.registeredAt ?? '',
    };
  } catch {
    return undefined;
  }
}
