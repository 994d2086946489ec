import { ValidationPipe } from '@nestjs/common';
import { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { InstanceRegistrar } from '@app/etcd';
import { InstanceNotFoundError, InstanceRegistration, InvalidRequestError, ResolvedInstance } from '@app/registry';
import { AccessRule, ruleFor } from '../../auth/access-policy';
import { ApiToken } from '../../auth/api-tokens';
import { ApiAccess } from '../../auth/request-auth';
import { XmlBodyRouteConfig } from '../../http/body-parsers';
import { describeError, logError } from '../../http/error.filter';
import { plainRegistration } from '../../http/fast-routes/registration-body';
import { isStringMap, RegisterInstanceDto, registrationFrom } from '../../http/register-instance.dto';
import { ResolveService } from '../../resolve/resolve.service';
import { DoorRouteConfig } from '../door-requests';
import { EncodedApplications, EurekaFormat } from './encoded-applications';
import { EurekaObject, eurekaApplicationOf, eurekaInstanceOf, registrationOf, registryIdOf, serviceOfApp, statusOf } from './eureka-instance';
import { eurekaXml, parseEurekaXml } from './eureka-xml';

export interface EurekaDoorDeps {
  registrar: InstanceRegistrar;
  resolver: ResolveService;
  access: ApiAccess;
  /** The app's global body pipe: a mapped registration goes through it, exactly as a REST one. */
  bodyPipe: ValidationPipe;
}

/** Spring's default serviceUrl is `.../eureka/`, eureka-js-client's servicePath `/eureka/v2/apps/`: both, with and without a trailing slash. */
const PREFIXES = ['/eureka', '/eureka/v2'];

/** Eureka answers every instance, whatever its status; clients filter UP themselves. */
const EVERY_STATUS = { status: 'all' } as const;

type Params = { app?: string; id?: string };
type Request = FastifyRequest<{ Params: Params; Querystring: Record<string, unknown>; Body: unknown }>;

interface Call {
  request: Request;
  reply: FastifyReply;
  /** The verified token; undefined with AUTH_DISABLED. */
  token: ApiToken | undefined;
  /** `:app` as its registry service name (undefined on routes without one). */
  service: string | undefined;
  /** `:id` as its registry instance id (undefined on routes without one). */
  id: string | undefined;
}

interface Operation {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below each prefix, without trailing slash. */
  path: string;
  /** registry_door_requests_total's `operation`. */
  name: string;
  /** The route ACCESS_POLICY decides this operation by (`/eureka` + path, `:app` as `:service`). */
  rule: AccessRule;
  xmlBody?: boolean;
  handle(call: Call): Promise<unknown>;
}

/**
 * The Eureka REST subset (issue 23), a thin translation onto the gateway: every write goes through
 * the InstanceRegistrar (validation, limits, load shedding, leases) and every read through
 * ResolveService (the in-memory directory), exactly as the REST API's. Its routes are Fastify routes
 * outside Nest, like the hot routes: Eureka clients authenticate with Basic auth (user = token name,
 * password = token) or Bearer, and get Eureka's errors (status + a text message), not the JSON error
 * body of /v1. Names are mapped reversibly (eureka-instance.ts).
 */
export class EurekaDoor {
  private readonly applications = new EncodedApplications();

  constructor(private readonly deps: EurekaDoorDeps) {}

  /** Adds the door's routes to Fastify (before Nest's own routes are registered). */
  serve(fastify: FastifyInstance): void {
    for (const operation of this.operations()) {
      for (const prefix of PREFIXES) {
        for (const url of [`${prefix}${operation.path}`, `${prefix}${operation.path}/`]) {
          const config: DoorRouteConfig & XmlBodyRouteConfig = { door: 'eureka', operation: operation.name, xmlBody: operation.xmlBody };
          // The route's own error handler: the body parsers' refusals (413, 415, malformed JSON) in Eureka's shape too.
          const errorHandler = (err: unknown, request: Request, reply: FastifyReply) => sendEurekaError(request, reply, err);
          fastify.route({ method: operation.method, url, config, handler: this.handler(operation), errorHandler } as RouteOptions);
        }
      }
    }
  }

  private operations(): Operation[] {
    const op = (method: Operation['method'], path: string, name: string, handle: Operation['handle'], xmlBody = false): Operation => ({
      method,
      path,
      name,
      // The delta is part of fetching the registry: the rule of /apps.
      rule: ruleFor(method, `/eureka${path === '/apps/delta' ? '/apps' : path.replace(':app', ':service')}`),
      xmlBody,
      handle,
    });
    return [
      op('POST', '/apps/:app', 'register', (call) => this.register(call), true),
      op('PUT', '/apps/:app/:id', 'renew', (call) => this.renew(call)),
      op('DELETE', '/apps/:app/:id', 'cancel', (call) => this.cancel(call)),
      op('GET', '/apps', 'get_apps', (call) => this.getApps(call)),
      // Eureka's own answer when it serves no deltas (disableDelta): clients then fetch /apps in full.
      op('GET', '/apps/delta', 'get_delta', async ({ reply }) => reply.code(403).type(TEXT).send('deltas are not served: fetch /apps')),
      op('GET', '/apps/:app', 'get_app', (call) => this.getApp(call)),
      op('GET', '/apps/:app/:id', 'get_instance', (call) => this.getInstance(call)),
      op('GET', '/instances/:id', 'get_instance_by_id', (call) => this.getInstanceById(call)),
      op('PUT', '/apps/:app/:id/status', 'status_override', (call) => this.overrideStatus(call, queryText(call.request, 'value', true)!)),
      op('DELETE', '/apps/:app/:id/status', 'status_override_removed', (call) => this.overrideStatus(call, queryText(call.request, 'value', false) ?? 'UP')),
      op('PUT', '/apps/:app/:id/metadata', 'metadata', (call) => this.updateMetadata(call)),
    ];
  }

  /** Names (400), then the token (401), access rule (403) and registration budget (429), as on every route; then the operation. */
  private handler(operation: Operation): (request: Request, reply: FastifyReply) => Promise<unknown> {
    return async (request, reply) => {
      const { app, id } = request.params;
      // As Nest's router and the hot routes: an empty path segment is no route.
      if (app === '' || id === '') return reply.callNotFound();
      try {
        const service = app === undefined ? undefined : serviceOfApp(app);
        const registryId = id === undefined ? undefined : registryIdOf(id);
        const token = this.deps.access.authorizer?.authorize(operation.rule, service, request.headers.authorization, { basic: true });
        return await operation.handle({ request, reply, token, service, id: registryId });
      } catch (err) {
        return sendEurekaError(request, reply, err);
      }
    };
  }

  private async register({ request, reply }: Call): Promise<unknown> {
    const body = typeof request.body === 'string' ? parseEurekaXml(request.body) : request.body;
    const { service, id, registration } = registrationOf(request.params.app!, body);
    await this.deps.registrar.register(service, id, await this.validated(registration));
    return reply.code(204).send();
  }

  /** The REST API's own validation (registration-body.ts, else the global pipe), on the mapped fields. */
  private async validated(registration: InstanceRegistration): Promise<InstanceRegistration> {
    const { address, port, ttl, metadata, status } = registration;
    const body = { address, port, ttl, metadata, status };
    return plainRegistration(body) ?? registrationFrom((await this.deps.bodyPipe.transform(body, { type: 'body', metatype: RegisterInstanceDto })) as RegisterInstanceDto);
  }

  /** 404 for an instance the registry does not know: the Eureka client then registers again. */
  private async renew({ reply, service, id }: Call): Promise<unknown> {
    if (!this.deps.registrar.heartbeatTracked(service!, id!)) await this.deps.registrar.heartbeat(service!, id!);
    return reply.code(200).send();
  }

  private async cancel({ reply, service, id }: Call): Promise<unknown> {
    await this.deps.registrar.deregister(service!, id!);
    return reply.code(200).send();
  }

  /**
   * Every service with its instances, from the directory (listServices, then resolve per service, both
   * from memory), each application encoded once per revision (EncodedApplications). An agent token
   * sees the services its globs cover.
   */
  private async getApps({ request, reply, token }: Call): Promise<unknown> {
    const { services } = await this.deps.resolver.listServices();
    const covered = services.filter(({ service }) => !token || token.coversService(service));
    const answers = await Promise.all(covered.map(({ service }) => this.deps.resolver.resolve(service, EVERY_STATUS)));
    const format = formatOf(request);
    return reply.type(CONTENT_TYPES[format]).send(this.applications.encode(format, answers));
  }

  private async getApp({ request, reply, service }: Call): Promise<unknown> {
    const { instances } = await this.deps.resolver.resolve(service!, EVERY_STATUS);
    if (!instances.length) return sendNotFound(reply, `app ${request.params.app} has no instances`);
    return sendDocument(request, reply, { application: eurekaApplicationOf(service!, instances) });
  }

  private async getInstance({ request, reply, service, id }: Call): Promise<unknown> {
    const instance = await this.find(service!, id!);
    return sendDocument(request, reply, { instance: eurekaInstanceOf(service!, instance) });
  }

  /** Eureka's lookup by id alone: every service (an agent's: those it covers) is searched, from memory. */
  private async getInstanceById({ request, reply, token, id }: Call): Promise<unknown> {
    const { services } = await this.deps.resolver.listServices();
    for (const { service } of services) {
      if (token && !token.coversService(service)) continue;
      const instance = (await this.deps.resolver.resolve(service, EVERY_STATUS)).instances.find((i) => i.id === id);
      if (instance) return sendDocument(request, reply, { instance: eurekaInstanceOf(service, instance) });
    }
    return sendNotFound(reply, `instance ${request.params.id} is not registered`);
  }

  /** `PUT .../status?value=OUT_OF_SERVICE`, `DELETE .../status` (back to UP, or `value`): the instance's status in the registry. */
  private async overrideStatus({ reply, service, id }: Call, value: string): Promise<unknown> {
    const status = statusOf(value, 'value');
    await this.deps.resolver.updateInstance(service!, id!, { status });
    return reply.code(200).send();
  }

  /** `PUT .../metadata?key=value&...`: merged into the instance's metadata, within the registration limits. */
  private async updateMetadata({ request, reply, service, id }: Call): Promise<unknown> {
    const changes: Record<string, string> = {};
    for (const key of Object.keys(request.query ?? {})) changes[key] = queryText(request, key, true)!;
    const current = await this.find(service!, id!);
    const metadata = { ...current.metadata, ...changes };
    if (!isStringMap(metadata)) throw new InvalidRequestError('metadata must stay within the registration limits (keys of [A-Za-z0-9._/-], sizes as for the REST API)', 'metadata');
    await this.deps.resolver.updateInstance(service!, id!, { status: current.status, metadata });
    return reply.code(200).send();
  }

  private async find(service: string, id: string): Promise<ResolvedInstance> {
    const instance = (await this.deps.resolver.resolve(service, EVERY_STATUS)).instances.find((i) => i.id === id);
    if (!instance) throw new InstanceNotFoundError(service, id);
    return instance;
  }
}

function queryText(request: Request, name: string, required: boolean): string | undefined {
  const value = request.query?.[name];
  if (value === undefined && !required) return undefined;
  if (value === undefined) throw new InvalidRequestError(`query parameter ${name} is required`, name);
  if (typeof value !== 'string') throw new InvalidRequestError(`query parameter ${name} must be given once`, name);
  return value;
}

/** A lookup that found nothing (no typed error names an app or an instance without its app). */
function sendNotFound(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(404).type(TEXT).send(message);
}

const TEXT = 'text/plain; charset=utf-8';

/** JSON when the client asks for it (eureka-js-client, Spring); XML otherwise, as Eureka (Prometheus sends no Accept and reads XML only). */
function formatOf(request: Request): EurekaFormat {
  return /json/i.test(request.headers.accept ?? '') ? 'json' : 'xml';
}

const CONTENT_TYPES: Record<EurekaFormat, string> = { json: 'application/json', xml: 'application/xml' };

function sendDocument(request: Request, reply: FastifyReply, document: EurekaObject): FastifyReply {
  const format = formatOf(request);
  return reply.type(CONTENT_TYPES[format]).send(format === 'json' ? JSON.stringify(document) : eurekaXml(document));
}

/**
 * Eureka's error shape: the status and a plain-text message (as Eureka's own `Response.status(400)
 * .entity("Missing instanceId")`), with the same statuses and headers (Retry-After) as the REST API.
 */
function sendEurekaError(request: Request, reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body, headers } = describeError(err);
  logError(request, err, status, body);
  for (const [name, value] of Object.entries(headers)) void reply.header(name, value);
  if (status === 401) void reply.header('www-authenticate', 'Basic realm="registry-gateway"');
  return reply.code(status).type(TEXT).send(body.message);
}
