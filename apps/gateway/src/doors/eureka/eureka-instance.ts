import {
  fromRegistryName,
  InstanceRegistration,
  InstanceStatus,
  InvalidRequestError,
  REGISTRATION_LIMITS as L,
  ResolvedInstance,
  toRegistryName,
} from '@app/registry';

/**
 * The Eureka shapes (an `instance`, an `application`, the `applications` document) as plain objects in
 * Eureka's own JSON convention: attributes are `@name` keys, an element's text beside them is `$`
 * (`"port": {"$": 8080, "@enabled": "true"}`). eureka-xml.ts reads and writes XML in the same
 * convention, so this one mapping serves both formats.
 */
export type EurekaObject = Record<string, unknown>;

/**
 * Eureka's five statuses onto our three, and back. STARTING and UNKNOWN are not serving, so they are
 * DOWN here (and read back as DOWN); OUT_OF_SERVICE is what an operator sets to take an instance out of
 * rotation: our DRAINING.
 */
const TO_REGISTRY_STATUS: Record<string, InstanceStatus> = { UP: 'UP', DOWN: 'DOWN', STARTING: 'DOWN', UNKNOWN: 'DOWN', OUT_OF_SERVICE: 'DRAINING' };
const TO_EUREKA_STATUS: Record<InstanceStatus, string> = { UP: 'UP', DOWN: 'DOWN', DRAINING: 'OUT_OF_SERVICE' };
export const EUREKA_STATUSES = Object.keys(TO_REGISTRY_STATUS);

/** Eureka's default lease (LeaseInfo.DEFAULT_LEASE_DURATION): used when a client sends no leaseInfo. */
export const EUREKA_DEFAULT_LEASE_SECONDS = 90;

const DEFAULT_DATA_CENTER = { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' };

/**
 * Eureka app names are upper case (the server upper-cases them, and every client looks them up upper
 * case), registry service names are usually lower case: an app is stored as its lower-case name, so
 * `PAYMENTS` registered through Eureka is `payments` for the REST API and the other way round.
 * Anything outside the key-safe alphabet is escaped reversibly (toRegistryName).
 */
export function serviceOfApp(app: string): string {
  const service = toRegistryName(app.toLowerCase());
  if (!service) throw new InvalidRequestError(`app name "${app}" is empty, too long (128 characters once encoded) or does not start with a letter or digit`, 'app');
  return service;
}

export function appOfService(service: string): string {
  return fromRegistryName(service).toUpperCase();
}

/** Instance ids keep their case (Spring's default `host:app:port` contains colons: escaped reversibly). */
export function registryIdOf(instanceId: string): string {
  const id = toRegistryName(instanceId);
  if (!id) throw new InvalidRequestError(`instance id "${instanceId}" is empty, too long (128 characters once encoded) or does not start with a letter or digit`, 'instanceId');
  return id;
}

export function statusOf(eurekaStatus: string, field: string): InstanceStatus {
  const status = TO_REGISTRY_STATUS[eurekaStatus.toUpperCase()];
  if (!status) throw new InvalidRequestError(`${field} must be one of ${EUREKA_STATUSES.join(', ')}`, field);
  return status;
}

export interface EurekaRegistration {
  service: string;
  id: string;
  /** The registration before the gateway's own validation (RegisterInstanceDto's rules) runs on it. */
  registration: InstanceRegistration;
}

/**
 * `POST /apps/{app}` body -> a registration. What Eureka has and the registry has not (appGroupName,
 * vipAddress, homePageUrl, dataCenterInfo, ...) is dropped; see the README's compatibility table.
 * Throws InvalidRequestError naming the Eureka field for what cannot be mapped; the registration's own
 * limits (address, metadata) are checked afterwards by the same validation as the REST API.
 */
export function registrationOf(pathApp: string, body: unknown): EurekaRegistration {
  const instance = isObject(body) ? body.instance : undefined;
  if (!isObject(instance)) throw new InvalidRequestError('the body must be {"instance": {...}} (JSON) or <instance>...</instance> (XML)', 'instance');
  const app = optionalText(instance.app, 'instance.app');
  if (app !== undefined && app.toUpperCase() !== pathApp.toUpperCase()) throw new InvalidRequestError(`instance.app "${app}" is not the app of the path, "${pathApp}"`, 'instance.app');
  const hostName = optionalText(instance.hostName, 'instance.hostName');
  const ipAddr = optionalText(instance.ipAddr, 'instance.ipAddr');
  // Eureka's own fallback: an instance without instanceId is known by its hostName.
  const instanceId = optionalText(instance.instanceId, 'instance.instanceId') ?? hostName;
  if (!instanceId) throw new InvalidRequestError('instance.instanceId (or instance.hostName) is required', 'instance.instanceId');
  const address = ipAddr ?? hostName;
  if (!address) throw new InvalidRequestError('instance.ipAddr (or instance.hostName) is required', 'instance.ipAddr');
  const status = optionalText(instance.status, 'instance.status');
  return {
    service: serviceOfApp(pathApp),
    id: registryIdOf(instanceId),
    registration: {
      address,
      port: portOf(instance),
      ttl: leaseSecondsOf(instance.leaseInfo),
      metadata: metadataOf(instance.metadata),
      tags: [],
      weight: L.weight.default,
      status: status === undefined ? 'UP' : statusOf(status, 'instance.status'),
    },
  };
}

/** The enabled one of `port` and `securePort` (the registry keeps one port), `port` first. */
function portOf(instance: EurekaObject): number {
  const plain = portField(instance.port, 'instance.port');
  const secure = portField(instance.securePort, 'instance.securePort');
  const chosen = plain?.enabled !== false && plain ? plain : secure?.enabled ? secure : plain;
  if (!chosen) throw new InvalidRequestError('instance.port is required', 'instance.port');
  return chosen.port;
}

/** `8080`, `"8080"` or `{"$": 8080, "@enabled": "true"}` (XML: `<port enabled="true">8080</port>`). */
function portField(value: unknown, field: string): { port: number; enabled: boolean } | undefined {
  if (value === undefined || value === null) return undefined;
  const raw = isObject(value) ? value.$ : value;
  const enabled = isObject(value) ? String(value['@enabled'] ?? 'true') !== 'false' : true;
  const port = typeof raw === 'string' && /^\d{1,5}$/.test(raw) ? Number(raw) : raw;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < L.port.min || port > L.port.max) {
    throw new InvalidRequestError(`${field} must be an integer from ${L.port.min} to ${L.port.max}, as a number or {"$": port, "@enabled": "true"}`, field);
  }
  return { port, enabled };
}

/** `leaseInfo.durationInSecs` is the TTL, held to the REST API's bounds (a clear 400 outside them). */
function leaseSecondsOf(leaseInfo: unknown): number {
  if (leaseInfo === undefined || leaseInfo === null) return EUREKA_DEFAULT_LEASE_SECONDS;
  if (!isObject(leaseInfo)) throw new InvalidRequestError('instance.leaseInfo must be an object', 'instance.leaseInfo');
  const raw = leaseInfo.durationInSecs;
  if (raw === undefined || raw === null) return EUREKA_DEFAULT_LEASE_SECONDS;
  const seconds = typeof raw === 'string' && /^\d{1,6}$/.test(raw) ? Number(raw) : raw;
  const { min, max } = L.ttlSeconds;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < min || seconds > max) {
    throw new InvalidRequestError(`instance.leaseInfo.durationInSecs must be an integer from ${min} to ${max} (it becomes the instance's TTL)`, 'instance.leaseInfo.durationInSecs');
  }
  return seconds;
}

/**
 * Eureka metadata is a string map; JSON clients may send numbers or booleans (kept as their text).
 * Jackson's `@class` marker (`java.util.Collections$EmptyMap`) is not metadata.
 */
function metadataOf(value: unknown): Record<string, string> {
  if (value === undefined || value === null || value === '') return {};
  if (!isObject(value)) throw new InvalidRequestError('instance.metadata must be an object of strings', 'instance.metadata');
  const metadata: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (key === '@class') continue;
    if (typeof entry === 'string') metadata[key] = entry;
    else if (typeof entry === 'number' || typeof entry === 'boolean') metadata[key] = String(entry);
    else throw new InvalidRequestError(`instance.metadata.${key} must be a string`, 'instance.metadata');
  }
  return metadata;
}

/** Absent, empty and `null` (which some Jackson-based clients write for unset fields) are all "not given". */
function optionalText(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new InvalidRequestError(`${field} must be a string`, field);
  return value;
}

function isObject(value: unknown): value is EurekaObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One registry instance as a Eureka `instance`. Only what the registry holds is filled in; the rest is Eureka's default. */
export function eurekaInstanceOf(service: string, instance: ResolvedInstance): EurekaObject {
  const app = appOfService(service);
  const vip = fromRegistryName(service);
  const registeredAt = instance.registeredAt ? Date.parse(instance.registeredAt) : NaN;
  const timestamp = String(Number.isNaN(registeredAt) ? 0 : registeredAt);
  return {
    instanceId: fromRegistryName(instance.id),
    hostName: instance.address,
    app,
    ipAddr: instance.address,
    status: TO_EUREKA_STATUS[instance.status],
    overriddenStatus: 'UNKNOWN',
    port: { $: instance.port, '@enabled': 'true' },
    securePort: { $: 443, '@enabled': 'false' },
    countryId: 1,
    dataCenterInfo: DEFAULT_DATA_CENTER,
    leaseInfo: { registrationTimestamp: Number(timestamp), serviceUpTimestamp: Number(timestamp) },
    metadata: { ...instance.metadata },
    // The registry has no VIP addresses: the service name stands in, which is what Spring and
    // eureka-js-client look instances up by (their vipAddress defaults to the app name).
    vipAddress: vip,
    secureVipAddress: vip,
    isCoordinatingDiscoveryServer: 'false',
    lastUpdatedTimestamp: timestamp,
    lastDirtyTimestamp: timestamp,
    actionType: 'ADDED',
  };
}

export function eurekaApplicationOf(service: string, instances: readonly ResolvedInstance[]): EurekaObject {
  return { name: appOfService(service), instance: instances.map((instance) => eurekaInstanceOf(service, instance)) };
}

/**
 * The `applications` document's `apps__hashcode`, as Eureka computes it: the count of instances per
 * status (`DOWN_1_UP_3_`, statuses in alphabetical order), which clients compare with their own copy.
 */
export function appsHashcode(services: ReadonlyArray<{ instances: readonly ResolvedInstance[] }>): string {
  const counts = new Map<string, number>();
  for (const { instances } of services) for (const { status } of instances) counts.set(TO_EUREKA_STATUS[status], (counts.get(TO_EUREKA_STATUS[status]) ?? 0) + 1);
  return [...counts.keys()]
    .sort()
    .map((status) => `${status}_${counts.get(status)}_`)
    .join('');
}

/** The head of the `applications` document; its `application` list is written by EncodedApplications. */
export function applicationsHead(hashcode: string): EurekaObject {
  return { versions__delta: '1', apps__hashcode: hashcode };
}
