import { Logger } from '@nestjs/common';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InstanceRegistrar } from '@app/etcd';
import { DOOR_TAG_LIMITS, fromRegistryName, InstanceNotFoundError, InvalidRequestError, RegistryError, ResolvedInstance, toRegistryName } from '@app/registry';
import { AccessRule, ruleFor } from '../../auth/access-policy';
import { ApiToken } from '../../auth/api-tokens';
import { ApiAccess, TokenRequiredError } from '../../auth/request-auth';
import { describeError } from '../../http/error.filter';
import { BATCH_ROUTE, HEARTBEAT_ROUTE, REGISTER_ROUTE, RESOLVE_ROUTE } from '../../http/fast-routes/fast-routes';
import { GatewayMetrics } from '../../metrics/gateway-metrics';
import { BlockingQuery } from '../../resolve/resolve-query.pipe';
import { ResolveService } from '../../resolve/resolve.service';
import { untilClientGone } from '../../resolve/until-client-gone';
import { AnswerContext, catalogEntry, healthEntry, tagUnion } from './consul-answers';
import { consulIndex, parseConsulQuery, UnknownDatacenterError } from './consul-query';
import { CheckStatus, CONSUL_CHECK_KEY, inMaintenance, maintenanceChange, parseServiceRegistration, registryNameOf, statusAfterCheck } from './consul-registration';
import { ConsulServiceIds } from './consul-service-ids';

export interface ConsulApiDeps {
  registrar: InstanceRegistrar;
  resolver: ResolveService;
  access: ApiAccess;
  metrics: GatewayMetrics;
  datacenter: string;
  /** The last revision this replica's registry watch delivered (see consulIndex). */
  watchRevision: () => number;
}

/** A Consul service ID the registry does not hold; Consul's own 404 text. */
class UnknownServiceIdError extends InstanceNotFoundError {
  constructor(consulId: string) {
    super('', consulId);
    this.message = `Unknown service ID "${consulId}". Ensure that the service ID is passed, not the service name.`;
  }
}

class UnknownCheckIdError extends InstanceNotFoundError {
  constructor(checkId: string) {
    super('', checkId);
    this.message = `Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`;
  }
}

/**
 * Who may call what: the REST API's rules for the same acts (auth/access-policy.ts), so a token can do
 * through Consul exactly what it can do through REST, with the same registration budget.
 */
const RULES = {
  register: ruleFor('PUT', REGISTER_ROUTE),
  deregister: ruleFor('DELETE', REGISTER_ROUTE),
  maintenance: ruleFor('PATCH', REGISTER_ROUTE),
  check: ruleFor('PUT', HEARTBEAT_ROUTE),
  /**
   * Any agent write, checked before the body or the ID names a service: a token that may write at all
   * (the roles of POST /v1/heartbeats), refused with a message that names the Consul paths.
   */
  anyWrite: { methods: ['PUT'], route: '/v1/agent/*', grants: ruleFor('POST', BATCH_ROUTE).grants } satisfies AccessRule,
  service: ruleFor('GET', RESOLVE_ROUTE),
  catalog: ruleFor('GET', '/v1/services'),
  /** Clients read it at start (Prometheus for the datacenter): any valid token. Also the check of a token before a 400 for a name no service can have. */
  agentSelf: { methods: ['GET'], route: '/v1/agent/self', grants: ['admin', 'reader', 'agent'] } satisfies AccessRule,
} as const;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The `operation` label of registry_door_requests_total. */
    operation?: string;
  }
}

type Request = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, unknown> }>;

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The Consul HTTP API subset, as its own Fastify server (a listener of its own: clients expect
 * Consul's paths at the root). A thin translation: writes go through the InstanceRegistrar, reads
 * through ResolveService, tokens through the API's RequestAuthorizer, errors through describeError
 * (then in Consul's shape: plain text bodies), exactly as the REST API's hot routes do.
 */
export function buildConsulApi(deps: ConsulApiDeps): FastifyInstance {
  const api = new ConsulApi(deps);
  const fastify = Fastify({
    bodyLimit: DOOR_TAG_LIMITS.bodyMaxBytes,
    // Consul names and IDs are free-form: an encoded ID up to 128 bytes may take 3 characters a byte.
    routerOptions: { maxParamLength: 1024 },
    logger: false,
    // request.ip (the Address of a service registered without one) is the client's behind a proxy
    // that sends X-Forwarded-For. Trusting it gives a client nothing: it may send any Address anyway.
    trustProxy: true,
  });
  // Consul clients send JSON with or without a content type (Go's client sets none): any body is JSON.
  fastify.removeAllContentTypeParsers();
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    parseJson(request, body as string, (err, parsed) => done(err ? new InvalidRequestError(`Request decode failed: ${err.message}`) : null, parsed));
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    deps.metrics.doorRequests.inc({ door: 'consul', operation: request.routeOptions.config?.operation ?? 'unsupported', status: String(reply.statusCode) });
    done();
  });
  fastify.setErrorHandler((err, request, reply) => sendConsulError(reply, err));
  // The path is not echoed (as the REST API's router errors do not).
  fastify.setNotFoundHandler((_request, reply) => reply.code(404).type('text/plain; charset=utf-8').send('Unsupported path: the registry gateway serves a subset of the Consul HTTP API'));

  const route = (method: 'GET' | 'PUT', url: string, operation: string, handler: (request: Request, reply: FastifyReply) => Promise<unknown>) =>
    fastify.route({ method, url, config: { operation }, handler: (request, reply) => handler(request as Request, reply).catch((err: unknown) => sendConsulError(reply, err)) });
  route('GET', '/v1/agent/self', 'agent.self', (rq, rp) => api.agentSelf(rq, rp));
  route('GET', '/v1/status/leader', 'status.leader', (rq, rp) => api.statusLeader(rq, rp));
  route('PUT', '/v1/agent/service/register', 'service.register', (rq, rp) => api.register(rq, rp));
  route('PUT', '/v1/agent/service/deregister/:id', 'service.deregister', (rq, rp) => api.deregister(rq, rp));
  route('PUT', '/v1/agent/service/maintenance/:id', 'service.maintenance', (rq, rp) => api.maintenance(rq, rp));
  for (const status of ['pass', 'warn', 'fail'] as const) route('PUT', `/v1/agent/check/${status}/:checkId`, `check.${status}`, (rq, rp) => api.updateCheck(rq, rp, status));
  route('GET', '/v1/catalog/services', 'catalog.services', (rq, rp) => api.catalogServices(rq, rp));
  route('GET', '/v1/catalog/service/:service', 'catalog.service', (rq, rp) => api.serviceEntries(rq, rp, 'catalog'));
  route('GET', '/v1/health/service/:service', 'health.service', (rq, rp) => api.serviceEntries(rq, rp, 'health'));
  return fastify;
}

const CHECK_STATUS: Record<'pass' | 'warn' | 'fail', CheckStatus> = { pass: 'passing', warn: 'warning', fail: 'critical' };

class ConsulApi {
  private readonly ids: ConsulServiceIds;

  constructor(private readonly deps: ConsulApiDeps) {
    this.ids = new ConsulServiceIds({
      services: async () => (await deps.resolver.listServices()).services.map((s) => s.service),
      consulIds: async (service) => (await this.instancesOf(service)).filter((i) => i.metadata[CONSUL_CHECK_KEY] !== undefined).map((i) => i.id),
    });
  }

  async agentSelf(request: Request, reply: FastifyReply): Promise<unknown> {
    this.authorize(request, RULES.agentSelf, undefined);
    const { datacenter } = this.deps;
    return reply.type(JSON_TYPE).send({
      Config: { Datacenter: datacenter, NodeName: 'registry-gateway', NodeID: '', Server: false, Version: '1.16.0', Revision: 'registry-gateway' },
      Member: { Name: 'registry-gateway', Addr: '', Port: 0, Tags: { dc: datacenter, role: 'node' }, Status: 1 },
      Meta: {},
    });
  }

  /**
   * Spring Cloud Consul's health indicator asks for the leader: the registry's "leader" is whichever
   * replica answers, so the answer is the address the client reached. Consul needs no token here.
   */
  async statusLeader(request: Request, reply: FastifyReply): Promise<unknown> {
    return reply.type(JSON_TYPE).send(JSON.stringify(request.host));
  }

  /** Consul IDs are unique per agent: registering one under another name replaces it, here too. */
  async register(request: Request, reply: FastifyReply): Promise<unknown> {
    // The token before the body, as on REST: a wrong token is refused whatever it sent. The service
    // (and the registration budget) is checked once the body names it.
    this.authorize(request, RULES.anyWrite, undefined);
    const { service, id, registration } = parseServiceRegistration(request.body, request.ip);
    this.authorize(request, RULES.register, service);
    const previous = this.ids.known(id);
    await this.deps.registrar.register(service, id, registration);
    this.ids.learn(id, service);
    if (previous !== undefined && previous !== service) {
      await this.deps.registrar.deregister(previous, id).catch((err: unknown) => {
        if (!(err instanceof InstanceNotFoundError)) throw err;
      });
    }
    return reply.send();
  }

  async deregister(request: Request, reply: FastifyReply): Promise<unknown> {
    await this.onInstance(request, request.params.id, RULES.deregister, async (service, id) => {
      await this.deps.registrar.deregister(service, id);
      this.ids.forget(id);
    });
    return reply.send();
  }

  /** A pass is a heartbeat (no etcd call); only a change of status is written. */
  async updateCheck(request: Request, reply: FastifyReply, update: 'pass' | 'warn' | 'fail'): Promise<unknown> {
    const checkId = request.params.checkId;
    if (!checkId.startsWith('service:')) {
      this.authorize(request, RULES.anyWrite, undefined);
      throw new UnknownCheckIdError(checkId);
    }
    await this.onInstance(request, checkId.slice('service:'.length), RULES.check, async (service, id) => {
      if (!this.deps.registrar.heartbeatTracked(service, id)) await this.deps.registrar.heartbeat(service, id);
      const current = (await this.instancesOf(service)).find((i) => i.id === id);
      const status = statusAfterCheck(CHECK_STATUS[update], current ? inMaintenance(current.metadata) : false);
      if (current?.status !== status) await this.deps.resolver.updateInstance(service, id, { status });
    });
    return reply.send();
  }

  async maintenance(request: Request, reply: FastifyReply): Promise<unknown> {
    const enable = request.query.enable;
    if (enable === undefined || enable === '') throw new InvalidRequestError('Missing value for enable', 'enable');
    if (enable !== 'true' && enable !== 'false') throw new InvalidRequestError(`Invalid value for enable: "${String(enable)}"`, 'enable');
    const reason = typeof request.query.reason === 'string' ? request.query.reason : '';
    await this.onInstance(request, request.params.id, RULES.maintenance, async (service, id) => {
      const current = (await this.instancesOf(service)).find((i) => i.id === id);
      if (!current) throw new InstanceNotFoundError(service, id);
      await this.deps.resolver.updateInstance(service, id, maintenanceChange(current, enable === 'true', reason));
    });
    return reply.send();
  }

  async catalogServices(request: Request, reply: FastifyReply): Promise<unknown> {
    this.authorize(request, RULES.catalog, undefined);
    const query = parseConsulQuery(request.query, this.deps.datacenter);
    const { index, answer } = await this.deps.resolver.listServicesBlocking(query.blocking, query.blocking && untilClientGone(reply));
    const services: Array<[string, string[]]> = [];
    for (const { service } of answer.services) services.push([fromRegistryName(service), tagUnion(await this.instancesOf(service))]);
    this.readHeaders(reply, this.indexOf(index, answer.revision, query.blocking), answer.stale);
    return reply.send(Object.fromEntries(services));
  }

  async serviceEntries(request: Request, reply: FastifyReply, shape: 'catalog' | 'health'): Promise<unknown> {
    const name = request.params.service;
    if (!toRegistryName(name)) this.authorize(request, RULES.agentSelf, undefined);
    const service = registryNameOf(name, 'service');
    this.authorize(request, RULES.service, service);
    const query = parseConsulQuery(request.query, this.deps.datacenter);
    // `passing` leaves out instances whose checks do not all pass: only UP, and not in maintenance.
    const filter = { status: shape === 'health' && query.passing ? ('UP' as const) : ('all' as const), tags: query.tags.length ? query.tags : undefined };
    const { index, answer } = await this.deps.resolver.resolveBlocking(service, filter, query.blocking, query.blocking && untilClientGone(reply));
    const consulIdx = this.indexOf(index, answer.revision, query.blocking);
    // Entries carry the view's own index: the same content always reads the same, whatever the header echoes.
    const ctx: AnswerContext = { datacenter: this.deps.datacenter, index: Math.max(1, Number(index)) };
    const instances = filter.status === 'UP' ? answer.instances.filter((i) => !inMaintenance(i.metadata)) : answer.instances;
    this.readHeaders(reply, consulIdx, answer.stale);
    return reply.send(instances.map((instance) => (shape === 'health' ? healthEntry(instance, name, ctx) : catalogEntry(instance, name, ctx))));
  }

  private indexOf(viewIndex: string, revision: string, query: BlockingQuery | undefined): string {
    return consulIndex(viewIndex, Math.max(this.deps.watchRevision(), Number(revision)), query);
  }

  private readHeaders(reply: FastifyReply, index: string, stale: boolean): void {
    // Go's Consul client (Prometheus) fails an answer without X-Consul-LastContact.
    void reply.type(JSON_TYPE).header('x-consul-index', index).header('x-consul-knownleader', String(!stale)).header('x-consul-lastcontact', '0');
  }

  private async instancesOf(service: string): Promise<ResolvedInstance[]> {
    return (await this.deps.resolver.resolve(service, { status: 'all' })).instances;
  }

  /**
   * Runs `act` on the instance a Consul service ID names, after the token check for its service. An
   * ID this replica maps to a service that no longer holds it (re-registered elsewhere under another
   * name) is looked up once more. An unknown ID is 404 only for a token that may write at all.
   * (Known IDs pay two token checks, a sha256 each: cheap next to the request itself.)
   */
  private async onInstance(request: Request, consulId: string, rule: AccessRule, act: (service: string, id: string) => Promise<void>): Promise<void> {
    // Only a token that may write at all makes this replica look for an ID it does not know.
    this.authorize(request, RULES.anyWrite, undefined);
    const id = toRegistryName(consulId);
    const service = id && (await this.ids.find(id));
    if (!id || !service) throw new UnknownServiceIdError(consulId);
    this.authorize(request, rule, service);
    try {
      await act(service, id);
    } catch (err) {
      if (!(err instanceof InstanceNotFoundError) || err instanceof UnknownServiceIdError) throw err;
      this.ids.forget(id);
      const moved = await this.ids.find(id);
      if (!moved || moved === service) throw new UnknownServiceIdError(consulId);
      this.authorize(request, rule, moved);
      await act(moved, id);
    }
  }

  /** `X-Consul-Token`, `?token=` or `Authorization: Bearer`, checked like any API token. */
  private authorize(request: Request, rule: AccessRule, service: string | undefined): ApiToken | undefined {
    const authorizer = this.deps.access.authorizer;
    if (!authorizer) return undefined;
    const header = request.headers['x-consul-token'];
    const query = request.query.token;
    const token = typeof header === 'string' && header !== '' ? header : typeof query === 'string' && query !== '' ? query : undefined;
    return authorizer.authorize(rule, service, token !== undefined ? `Bearer ${token}` : request.headers.authorization);
  }
}

const logger = new Logger('ConsulDoor');

/**
 * A failure in Consul's shape: plain text, the status describeError gives it (Retry-After kept), but
 * Consul refuses tokens with 403 (`ACL not found` for an unknown one), never 401.
 */
function sendConsulError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof UnknownDatacenterError) return reply.code(500).type('text/plain; charset=utf-8').send(err.message);
  const { status, body, headers } = describeError(err);
  // Expected refusals are counted in registry_door_requests_total; only a failure nobody mapped is logged.
  if (status >= 500 && !(err instanceof RegistryError)) logger.error(`unhandled error: ${(err as Error)?.message ?? String(err)}`, (err as Error)?.stack);
  for (const [name, value] of Object.entries(headers)) if (name !== 'www-authenticate') void reply.header(name, value);
  let text = body.message;
  if (err instanceof TokenRequiredError) text = err.reason === 'missing_token' ? 'Permission denied: token required' : 'ACL not found';
  else if (status === 403) text = `Permission denied: ${body.message}`;
  return reply
    .code(status === 401 ? 403 : status)
    .type('text/plain; charset=utf-8')
    .send(text);
}
