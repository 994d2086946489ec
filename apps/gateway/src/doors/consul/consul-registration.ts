import { DOOR_TAG_LIMITS, InstanceRegistration, InstanceStatus, InvalidRequestError, REGISTRATION_LIMITS as L, toRegistryName } from '@app/registry';
import { isHostAddress } from '../../http/register-instance.dto';
import { parseGoDuration } from './consul-durations';

/** Status of a Consul health check. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/**
 * Marks an instance registered through the Consul door; its value is the TTL of its check (`10s`),
 * or empty for a service registered without a check. Consul's own Meta keys cannot contain `/`, so
 * no Consul client can collide with it.
 */
export const CONSUL_CHECK_KEY = 'consul/check';
/** Present while the service is in maintenance mode; its value is the reason given (may be empty). */
export const CONSUL_MAINTENANCE_KEY = 'consul/maintenance';

/**
 * Check status <-> instance status. `warning` is DRAINING: Consul's `?passing` leaves a warning
 * instance out, and so does the REST API's default resolve (UP only); critical is DOWN.
 */
export const INSTANCE_STATUS_OF: Readonly<Record<CheckStatus, InstanceStatus>> = { passing: 'UP', warning: 'DRAINING', critical: 'DOWN' };
export const CHECK_STATUS_OF: Readonly<Record<InstanceStatus, CheckStatus>> = { UP: 'passing', DRAINING: 'warning', DOWN: 'critical' };

export interface ConsulRegistration {
  /** Registry names (toRegistryName of Consul's Name and ID). */
  service: string;
  id: string;
  registration: InstanceRegistration;
}

/** Check kinds the gateway would have to run itself; refused rather than silently ignored. */
const RUN_CHECKS = ['http', 'tcp', 'grpc', 'h2ping', 'udp', 'args', 'script', 'dockercontainerid', 'aliasnode', 'aliasservice', 'osservice'];
/** Connect (service mesh) registrations: no proxy or sidecar exists behind this registry. */
const MESH_FIELDS = ['proxy', 'connect'];
/** Consul's own rule for Meta keys; it is a subset of the registry's metadata keys. */
const META_KEY = /^[A-Za-z0-9_-]+$/;
/** One metadata entry is the door's own (CONSUL_CHECK_KEY): a client has one less than the REST API. */
const META_MAX_KEYS = L.metadata.maxKeys - 1;

const invalid = (message: string, field?: string) => new InvalidRequestError(message, field);

/**
 * Keys as Consul's decoder matches them: case-insensitive, snake_case accepted
 * (`DeregisterCriticalServiceAfter`, `deregister_critical_service_after`).
 */
function normalizedKeys(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${what} must be a JSON object`);
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, field] of Object.entries(value)) out[key.replace(/_/g, '').toLowerCase()] = field;
  return out;
}

/** A service's registry name, or 400: names that cannot be mapped (see toRegistryName) exist nowhere. */
export function registryNameOf(name: string, field: string): string {
  const mapped = toRegistryName(name);
  if (!mapped) throw invalid(`${field} "${name}" cannot be mapped onto a registry name: it must start with a letter or digit and encode to at most 128 characters`, field);
  return mapped;
}

/** Seconds of a Consul duration field within the REST API's TTL bounds. */
function ttlSeconds(value: unknown): number {
  const ms = typeof value === 'string' ? parseGoDuration(value) : undefined;
  const { min, max } = L.ttlSeconds;
  if (ms === undefined || ms < min * 1000 || ms > max * 1000) throw invalid(`Check.TTL must be a duration from ${min}s to ${max}s, like "10s"`, 'Check.TTL');
  return Math.ceil(ms / 1000);
}

function tags(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((tag): tag is string => typeof tag === 'string')) throw invalid('Tags must be an array of strings', 'Tags');
  const bytes = value.reduce((sum, tag) => sum + Buffer.byteLength(tag), 0);
  if (value.length > DOOR_TAG_LIMITS.maxCount || bytes > DOOR_TAG_LIMITS.maxTotalBytes) {
    throw invalid(`Tags: at most ${DOOR_TAG_LIMITS.maxCount} tags of ${DOOR_TAG_LIMITS.maxTotalBytes / 1024} KiB in total`, 'Tags');
  }
  return value;
}

function meta(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('Meta must be an object of strings', 'Meta');
  const entries = Object.entries(value);
  const { keyMaxLength, valueMaxLength } = L.metadata;
  if (entries.length > META_MAX_KEYS) throw invalid(`Meta: at most ${META_MAX_KEYS} keys`, 'Meta');
  for (const [key, field] of entries) {
    if (!META_KEY.test(key) || key.length > keyMaxLength) throw invalid(`Meta keys must be 1-${keyMaxLength} characters of [A-Za-z0-9_-]`, 'Meta');
    if (typeof field !== 'string' || field.length > valueMaxLength) throw invalid(`Meta values must be strings of at most ${valueMaxLength} characters`, 'Meta');
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** The one TTL check a registration may carry; its TTL and initial status. */
function ttlCheck(fields: Record<string, unknown>, consulId: string): { ttl: number; status: CheckStatus } | undefined {
  let checks: unknown[] = [];
  if (Array.isArray(fields.checks)) checks = fields.checks;
  else if (fields.checks !== undefined && fields.checks !== null) throw invalid('Checks must be an array', 'Checks');
  if (fields.check !== undefined && fields.check !== null) checks = [fields.check, ...checks];
  if (checks.length === 0) return undefined;
  if (checks.length > 1) throw invalid('the registry gateway maps one TTL check per service; register at most one check', 'Checks');
  const check = normalizedKeys(checks[0], 'Check');
  const kind = RUN_CHECKS.find((name) => check[name] !== undefined && check[name] !== '' && check[name] !== null);
  if (kind) {
    throw invalid(`${kind.toUpperCase()} checks are not run by the registry gateway: register a TTL check and pass it (PUT /v1/agent/check/pass/service:<ID>)`, 'Check');
  }
  if (check.ttl === undefined) throw invalid('Check needs a TTL: the registry gateway maps TTL checks only', 'Check.TTL');
  // Consul names a service's only check service:<ID>; pass/warn/fail find the service by it.
  if (check.checkid !== undefined && check.checkid !== '' && check.checkid !== `service:${consulId}`) {
    throw invalid(`Check.CheckID must be "service:${consulId}" (or absent): the gateway finds a check by its service ID`, 'Check.CheckID');
  }
  const status = check.status ?? 'critical';
  if (status !== 'passing' && status !== 'warning' && status !== 'critical') throw invalid('Check.Status must be passing, warning or critical', 'Check.Status');
  const deregisterAfter = check.deregistercriticalserviceafter;
  if (deregisterAfter !== undefined && (typeof deregisterAfter !== 'string' || parseGoDuration(deregisterAfter) === undefined)) {
    throw invalid('Check.DeregisterCriticalServiceAfter must be a duration like "1m"', 'Check.DeregisterCriticalServiceAfter');
  }
  return { ttl: ttlSeconds(check.ttl), status };
}

/**
 * `PUT /v1/agent/service/register` body -> what the registrar takes, with the REST API's limits (tags:
 * DOOR_TAG_LIMITS). Without `Address` the service is at `clientAddress` (Consul would use its node's).
 * A service with a TTL check starts critical (DOWN) unless its `Status` says otherwise, as in Consul;
 * one without a check is UP and lives as long as it re-registers within the default TTL.
 * Anything the gateway cannot honour is a 400, never dropped.
 */
export function parseServiceRegistration(body: unknown, clientAddress: string): ConsulRegistration {
  const fields = normalizedKeys(body, 'the body');
  if (typeof fields.name !== 'string' || fields.name === '') throw invalid('Missing service name', 'Name');
  if (fields.id !== undefined && typeof fields.id !== 'string') throw invalid('ID must be a string', 'ID');
  const consulId = (fields.id as string | undefined) || fields.name;
  const kind = fields.kind;
  if ((kind !== undefined && kind !== '' && kind !== 'typical') || MESH_FIELDS.some((field) => fields[field] !== undefined && fields[field] !== null)) {
    throw invalid('Connect proxies, gateways and sidecars are not supported by the registry gateway', 'Kind');
  }
  const address = fields.address === undefined || fields.address === '' ? clientAddress : fields.address;
  if (!isHostAddress(address)) throw invalid('Address must be an IP address or a host name', 'Address');
  const port = fields.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < L.port.min || port > L.port.max) {
    throw invalid(`Port must be an integer from ${L.port.min} to ${L.port.max}`, 'Port');
  }
  const check = ttlCheck(fields, consulId);
  return {
    service: registryNameOf(fields.name, 'Name'),
    id: registryNameOf(consulId, 'ID'),
    registration: {
      address,
      port,
      ttl: check?.ttl ?? L.ttlSeconds.default,
      metadata: { ...meta(fields.meta), [CONSUL_CHECK_KEY]: check ? `${check.ttl}s` : '' },
      tags: tags(fields.tags),
      weight: L.weight.default,
      status: check ? INSTANCE_STATUS_OF[check.status] : 'UP',
    },
  };
}

export function inMaintenance(metadata: Readonly<Record<string, string>>): boolean {
  return Object.prototype.hasOwnProperty.call(metadata, CONSUL_MAINTENANCE_KEY);
}

/**
 * The instance status after a TTL check update. In maintenance the service stays out of rotation
 * (DRAINING) whatever its check says, unless the check is critical (DOWN), as Consul's maintenance
 * check keeps it critical.
 */
export function statusAfterCheck(update: CheckStatus, maintenance: boolean): InstanceStatus {
  if (maintenance) return update === 'critical' ? 'DOWN' : 'DRAINING';
  return INSTANCE_STATUS_OF[update];
}

/**
 * Maintenance mode on or off: DRAINING while on (a DOWN service stays DOWN); off, a service that was
 * DRAINING for maintenance is UP again (its next warn or fail says otherwise). The reason is kept in
 * the metadata, within the registry's value limit.
 */
export function maintenanceChange(
  current: { status: InstanceStatus; metadata: Readonly<Record<string, string>> },
  enable: boolean,
  reason: string,
): { status: InstanceStatus; metadata: Record<string, string> } {
  const metadata = { ...current.metadata };
  if (enable) {
    metadata[CONSUL_MAINTENANCE_KEY] = reason.slice(0, L.metadata.valueMaxLength);
    return { status: current.status === 'DOWN' ? 'DOWN' : 'DRAINING', metadata };
  }
  const was = inMaintenance(current.metadata);
  delete metadata[CONSUL_MAINTENANCE_KEY];
  return { status: was && current.status === 'DRAINING' ? 'UP' : current.status, metadata };
}
