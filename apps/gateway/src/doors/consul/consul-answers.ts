import { fromRegistryName, ResolvedInstance } from '@app/registry';
import { CHECK_STATUS_OF, CheckStatus, CONSUL_CHECK_KEY, CONSUL_MAINTENANCE_KEY, inMaintenance } from './consul-registration';

/**
 * Registry instances in the shapes Consul answers (`/v1/health/service`, `/v1/catalog/service`). Consul
 * has nodes (one agent per machine); the registry has none, so each instance is its own node, named
 * by its address, with its zone as node metadata.
 */
export interface AnswerContext {
  datacenter: string;
  /** The service view's index, used as every entry's Create/ModifyIndex (the registry keeps none per instance). */
  index: number;
}

const MAINTENANCE_DEFAULT_REASON = 'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';

/** Meta as the client registered it: the door's own entries (consul/...) are not shown. */
function userMeta(metadata: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).filter(([key]) => key !== CONSUL_CHECK_KEY && key !== CONSUL_MAINTENANCE_KEY));
}

function node(instance: ResolvedInstance, ctx: AnswerContext) {
  return {
    ID: '',
    Node: instance.address,
    Address: instance.address,
    Datacenter: ctx.datacenter,
    TaggedAddresses: { lan: instance.address, wan: instance.address },
    Meta: instance.zone ? { zone: instance.zone } : {},
    CreateIndex: ctx.index,
    ModifyIndex: ctx.index,
  };
}

function healthCheck(instance: ResolvedInstance, service: string, ctx: AnswerContext, check: { CheckID: string; Name: string; Status: CheckStatus; Notes: string; Type: string }) {
  const serviceId = check.CheckID === 'serfHealth' ? '' : fromRegistryName(instance.id);
  return {
    Node: instance.address,
    ...check,
    Output: '',
    ServiceID: serviceId,
    ServiceName: serviceId ? service : '',
    ServiceTags: serviceId ? instance.tags : [],
    Definition: {},
    CreateIndex: ctx.index,
    ModifyIndex: ctx.index,
  };
}

/**
 * An instance's checks: the node's (always passing: the registry has no node to fail), its TTL check
 * (status from the instance status; also shown for an instance registered elsewhere that is not UP,
 * so Consul's clients see it unhealthy), and Consul's maintenance check while in maintenance.
 */
export function checksOf(instance: ResolvedInstance, service: string, ctx: AnswerContext) {
  const consulId = fromRegistryName(instance.id);
  const checks = [healthCheck(instance, service, ctx, { CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Notes: '', Type: '' })];
  const maintenance = inMaintenance(instance.metadata);
  const hasTtlCheck = (instance.metadata[CONSUL_CHECK_KEY] ?? '') !== '';
  if (hasTtlCheck || instance.status !== 'UP') {
    // In maintenance the TTL check's own status is not kept: passing unless the service is DOWN.
    const status: CheckStatus = maintenance ? (instance.status === 'DOWN' ? 'critical' : 'passing') : CHECK_STATUS_OF[instance.status];
    checks.push(healthCheck(instance, service, ctx, { CheckID: `service:${consulId}`, Name: `Service '${service}' check`, Status: status, Notes: '', Type: 'ttl' }));
  }
  if (maintenance) {
    const reason = instance.metadata[CONSUL_MAINTENANCE_KEY] || MAINTENANCE_DEFAULT_REASON;
    checks.push(healthCheck(instance, service, ctx, { CheckID: `_service_maintenance:${consulId}`, Name: 'Service Maintenance Mode', Status: 'critical', Notes: reason, Type: 'maintenance' }));
  }
  return checks;
}

/** One entry of `GET /v1/health/service/{service}`; `service` is the Consul name. */
export function healthEntry(instance: ResolvedInstance, service: string, ctx: AnswerContext) {
  return {
    Node: node(instance, ctx),
    Service: {
      ID: fromRegistryName(instance.id),
      Service: service,
      Tags: instance.tags,
      Address: instance.address,
      Meta: userMeta(instance.metadata),
      Port: instance.port,
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      Datacenter: ctx.datacenter,
      CreateIndex: ctx.index,
      ModifyIndex: ctx.index,
    },
    Checks: checksOf(instance, service, ctx),
  };
}

/** One entry of `GET /v1/catalog/service/{service}`. */
export function catalogEntry(instance: ResolvedInstance, service: string, ctx: AnswerContext) {
  const { ID, Node, Address, Datacenter, TaggedAddresses, Meta } = node(instance, ctx);
  return {
    ID,
    Node,
    Address,
    Datacenter,
    TaggedAddresses,
    NodeMeta: Meta,
    ServiceKind: '',
    ServiceID: fromRegistryName(instance.id),
    ServiceName: service,
    ServiceTags: instance.tags,
    ServiceAddress: instance.address,
    ServiceWeights: { Passing: 1, Warning: 1 },
    ServiceMeta: userMeta(instance.metadata),
    ServicePort: instance.port,
    ServiceEnableTagOverride: false,
    CreateIndex: ctx.index,
    ModifyIndex: ctx.index,
  };
}

/** Every tag of a service's instances, each once, in the order first seen (`GET /v1/catalog/services`). */
export function tagUnion(instances: readonly ResolvedInstance[]): string[] {
  const seen = new Set<string>();
  for (const instance of instances) for (const tag of instance.tags) seen.add(tag);
  return [...seen];
}
