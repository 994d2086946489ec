import { ValidationPipe } from '@nestjs/common';
import { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod, RouteOptions } from 'fastify';
import { InstanceRegistrar } from '@app/etcd';
import { InstanceNotFoundError, RegistryUnavailableError } from '@app/registry';
import { AccessRule, ruleFor } from '../../auth/access-policy';
import { ApiToken } from '../../auth/api-tokens';
import { ApiAccess, checkNameParams, NameParams } from '../../auth/request-auth';
import { INDEX_HEADER_NAME } from '../../resolve/resolve.dto';
import { parseBlockingQuery, parseResolveQuery } from '../../resolve/resolve-query.pipe';
import { ResolveService } from '../../resolve/resolve.service';
import { untilClientGone } from '../../resolve/until-client-gone';
import { sendError } from '../error.filter';
import { BatchOutcome, HeartbeatBatchDto, InstanceOutcomeDto } from '../heartbeat-batch.dto';
import { RegisterInstanceDto, registrationFrom } from '../register-instance.dto';
import { InstanceRef, plainBatchRefs } from './batch-body';
import { plainRegistration } from './registration-body';

export interface FastRouteDeps {
  registrar: InstanceRegistrar;
  resolver: ResolveService;
  access: ApiAccess;
  /** The app's global body pipe: the batch and registration bodies go through it unless plainly valid. */
  bodyPipe: ValidationPipe;
}

export const REGISTER_ROUTE = '/v1/services/:service/instances/:id';
export const HEARTBEAT_ROUTE = '/v1/services/:service/instances/:id/heartbeat';
export const RESOLVE_ROUTE = '/v1/services/:service';
export const BATCH_ROUTE = '/v1/heartbeats';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

type Request = FastifyRequest<{ Params: NameParams; Querystring: Record<string, unknown> }>;

/**
 * The hot routes (registration, heartbeat, resolve, batch heartbeat), served outside Nest's per-request pipeline (guard, interceptors, pipes, filter and
 * the route's async plumbing cost more than the work itself; see bench/results/hot-routes.md).
 *
 * Their Nest controllers stay declared, because their decorators are the OpenAPI document; when Nest
 * registers such a route on Fastify, an onRoute hook swaps in the handler from here, so one route
 * serves each path. What Nest ran is run here with the same functions: the names and auth checks
 * (auth/request-auth.ts, as ApiAuthGuard), the query parsers of the pipes, the global body pipe, and
 * describeError/sendError of the error filter. Fastify-level hooks (request id, CORS, the duration
 * histogram, body parsers and their limits) apply to every route anyway.
 */
export function serveHotRoutesOutsideNest(fastify: FastifyInstance, deps: FastRouteDeps): void {
  const handlers = new Map<string, RouteHandlerMethod>([
    [`PUT ${REGISTER_ROUTE}`, registerHandler(deps)],
    [`PUT ${HEARTBEAT_ROUTE}`, heartbeatHandler(deps)],
    [`GET ${RESOLVE_ROUTE}`, resolveHandler(deps)],
    // Fastify adds HEAD for every GET with the GET's handler: swapped as well, so HEAD answers as GET.
    [`HEAD ${RESOLVE_ROUTE}`, resolveHandler(deps)],
    [`POST ${BATCH_ROUTE}`, batchHandler(deps)],
  ]);
  const swapped = new Set<string>();
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const key = `${String(route.method)} ${route.url}`;
    const handler = handlers.get(key);
    if (!handler) return;
    route.handler = handler;
    swapped.add(key);
  });
  // A renamed controller route would silently fall back to Nest's handler (the declaration's stub).
  fastify.addHook('onReady', async () => {
    const missing = [...handlers.keys()].filter((key) => !swapped.has(key));
    if (missing.length) throw new Error(`hot routes without a Nest declaration to serve: ${missing.join(', ')}`);
  });
}

/**
 * Nest's Fastify adapter answers a route whose path parameter is empty (`/v1/services//instances/x`)
 * with its not-found handler; so do these routes.
 */
function hasEmptyParam(params: NameParams): boolean {
  return params.service === '' || params.id === '';
}

/** The checks ApiAuthGuard makes for a Nest route: names (400), then, unless AUTH_DISABLED, token, access, budget. */
function check(request: Request, rule: AccessRule, access: ApiAccess): ApiToken | undefined {
  checkNameParams(request.params);
  return access.authorizer?.authorize(rule, request.params.service, request.headers.authorization);
}

/**
 * Registration: the guard's checks (the token's registration budget included), then the body: the
 * plain valid case by hand (registration-body.ts), anything else through the global pipe, as Nest would.
 */
function registerHandler({ registrar, access, bodyPipe }: FastRouteDeps): RouteHandlerMethod {
  const rule = ruleFor('PUT', REGISTER_ROUTE);
  return async function register(request: Request, reply: FastifyReply) {
    if (hasEmptyParam(request.params)) return reply.callNotFound();
    try {
      check(request, rule, access);
      const registration =
        plainRegistration(request.body) ?? registrationFrom((await bodyPipe.transform(request.body, { type: 'body', metatype: RegisterInstanceDto })) as RegisterInstanceDto);
      const service = request.params.service!;
      const id = request.params.id!;
      const result = await registrar.register(service, id, registration);
      const { service: _s, id: _i, ...instance } = result.record;
      return reply.code(result.created ? 201 : 200).send({ service, id, revision: result.revision, leaseId: result.leaseId, instance });
    } catch (err) {
      return sendError(request, reply, err);
    }
  } as RouteHandlerMethod;
}

/**
 * A heartbeat of an instance this replica tracks (nearly all of them) is answered in the same turn:
 * no promise, no await between the request and its 204 (registrar.heartbeatTracked). Any other goes
 * through registrar.heartbeat (directory or etcd lookup).
 */
function heartbeatHandler({ registrar, access }: FastRouteDeps): RouteHandlerMethod {
  const rule = ruleFor('PUT', HEARTBEAT_ROUTE);
  return function heartbeat(request: Request, reply: FastifyReply): void {
    if (hasEmptyParam(request.params)) return void reply.callNotFound();
    try {
      check(request, rule, access);
      const service = request.params.service!;
      const id = request.params.id!;
      if (registrar.heartbeatTracked(service, id)) return void reply.code(204).send();
      registrar.heartbeat(service, id).then(
        () => reply.code(204).send(),
        (err: unknown) => sendError(request, reply, err),
      );
    } catch (err) {
      sendError(request, reply, err);
    }
  } as RouteHandlerMethod;
}

/** The answer's JSON bytes come from ResolveService.resolveEncoded: encoded once per content version and filter. */
function resolveHandler({ resolver, access }: FastRouteDeps): RouteHandlerMethod {
  const rule = ruleFor('GET', RESOLVE_ROUTE);
  return async function resolve(request: Request, reply: FastifyReply) {
    if (hasEmptyParam(request.params)) return reply.callNotFound();
    try {
      check(request, rule, access);
      const filter = parseResolveQuery(request.query);
      const blocking = parseBlockingQuery(request.query);
      const { index, answer } = await resolver.resolveEncoded(request.params.service!, filter, blocking, blocking && untilClientGone(reply));
      return reply.header(INDEX_HEADER_NAME, index).header('content-type', JSON_CONTENT_TYPE).send(answer);
    } catch (err) {
      return sendError(request, reply, err);
    }
  } as RouteHandlerMethod;
}

/**
 * `POST /v1/heartbeats`: each ref is exactly a `PUT .../heartbeat` (answered from memory for a known
 * instance); one outcome per ref, in request order.
 */
function batchHandler({ registrar, access, bodyPipe }: FastRouteDeps): RouteHandlerMethod {
  const rule = ruleFor('POST', BATCH_ROUTE);
  const lookedUp = async (service: string, id: string): Promise<BatchOutcome> => {
    try {
      await registrar.heartbeat(service, id);
      return 'accepted';
    } catch (err) {
      if (err instanceof InstanceNotFoundError) return 'not_found';
      if (err instanceof RegistryUnavailableError) return 'unavailable';
      throw err;
    }
  };
  return async function heartbeatBatch(request: Request, reply: FastifyReply) {
    try {
      const token = check(request, rule, access);
      const refs = plainBatchRefs(request.body) ?? ((await bodyPipe.transform(request.body, { type: 'body', metatype: HeartbeatBatchDto })) as HeartbeatBatchDto).instances;
      const results: InstanceOutcomeDto[] = new Array(refs.length);
      const lookups: Array<Promise<unknown>> = [];
      refs.forEach(({ service, id }: InstanceRef, i) => {
        // An agent token may heartbeat only the services its globs cover (the route itself is open to agents).
        if (token && token.role === 'agent' && !token.coversService(service)) results[i] = { service, id, result: 'forbidden' };
        // Tracked here (nearly always): answered at once; the rest are looked up concurrently.
        else if (registrar.heartbeatTracked(service, id)) results[i] = { service, id, result: 'accepted' };
        else lookups.push(lookedUp(service, id).then((result) => (results[i] = { service, id, result })));
      });
      if (lookups.length) await Promise.all(lookups);
      return reply.code(200).send({ results });
    } catch (err) {
      return sendError(request, reply, err);
    }
  } as RouteHandlerMethod;
}
