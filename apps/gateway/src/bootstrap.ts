import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { LogController } from 'fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { HEARTBEAT_BATCH_LIMITS, REGISTRATION_LIMITS } from '@app/registry';
import { InstanceRegistrar } from '@app/etcd';
import { AppModule } from './app.module';
import { ApiAccess } from './auth/request-auth';
import { GatewayConfig } from './config/gateway-config';
import { countDoorRequests } from './doors/door-requests';
import { EurekaDoor } from './doors/eureka/eureka-door';
import { registerBodyParsers } from './http/body-parsers';
import { corsOptions } from './http/cors';
import { answerFrameworkError, MAX_PATH_SEGMENT_LENGTH } from './http/error.filter';
import { serveHotRoutesOutsideNest } from './http/fast-routes/fast-routes';
import { buildOpenApiDocument } from './http/openapi';
import { requestIdGenerator } from './http/request-ids';
import { bodyValidationPipe } from './http/validation';
import { lazyRequestLoggerFactory } from './logging/lazy-request-logger';
import { createPinoLogger, PinoNestLogger } from './logging/pino-logger';
import { GatewayMetrics } from './metrics/gateway-metrics';
import { observeRequestDurations } from './metrics/request-durations';
import { ResolveService } from './resolve/resolve.service';

/** Builds the gateway application (used by main.ts and by integration tests); does not listen. */
export async function createGatewayApp(config: GatewayConfig): Promise<NestFastifyApplication> {
  const logger = createPinoLogger(config.LOG_LEVEL);
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    // Per-request info logs at thousands of heartbeats a second would drown everything else;
    // errors are logged by the filter, and every request is in the duration histogram.
    logController: new LogController({ disableRequestLogging: true }),
    // Each request's child logger is made only when the request logs something (most never do).
    childLoggerFactory: lazyRequestLoggerFactory,
    // The largest body any route takes; body-parsers.ts holds each route to its own limit.
    bodyLimit: HEARTBEAT_BATCH_LIMITS.bodyMaxBytes,
    // find-my-way's default (100) answers 414 for valid 101-128 character names; with room above
    // 128, an overlong name reaches the name check and gets a 400 that names the field; beyond
    // 1024 the router answers 414, in our JSON shape through answerFrameworkError.
    routerOptions: { maxParamLength: MAX_PATH_SEGMENT_LENGTH },
    frameworkErrors: answerFrameworkError,
    // No Nest middleware is used (auth, CORS, limits are guards and Fastify hooks): without middie,
    // every request runs one onRequest hook less. app.use() would fail at start-up, not silently.
    skipMiddie: true,
    requestIdHeader: 'x-request-id',
    genReqId: requestIdGenerator(),
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: new PinoNestLogger(logger),
    bufferLogs: false,
    // registerBodyParsers() installs the only parsers: JSON, and a 415 for any other non-empty body.
    bodyParser: false,
  });
  const bodyPipe = bodyValidationPipe();
  app.useGlobalPipes(bodyPipe);
  // SIGTERM/SIGINT: stop accepting, finish in-flight requests, close streams (leases are kept), then
  // exit 0; health/graceful-shutdown.ts bounds it by SHUTDOWN_GRACE_MS.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });

  const metrics = app.get(GatewayMetrics);
  const fastify = app.getHttpAdapter().getInstance();
  // Before Nest registers its routes (app.init()/listen()): heartbeat, resolve and batch heartbeat
  // are swapped onto handlers outside Nest's per-request pipeline (http/fast-routes).
  const door = { registrar: app.get(InstanceRegistrar), resolver: app.get(ResolveService), access: app.get(ApiAccess), bodyPipe };
  serveHotRoutesOutsideNest(fastify, door);
  // Before any door route is registered: it hooks into the doors' routes as they are added.
  countDoorRequests(fastify, metrics.doorRequests);
  // The Eureka door (issue 23) is Fastify routes too: Basic auth, XML bodies, Eureka's error shape.
  new EurekaDoor(door).serve(fastify);
  registerBodyParsers(fastify, REGISTRATION_LIMITS.bodyMaxBytes, { '/v1/heartbeats': HEARTBEAT_BATCH_LIMITS.bodyMaxBytes });
  const cors = corsOptions(config.CORS_ORIGINS);
  if (cors) app.enableCors(cors);
  observeRequestDurations(fastify, metrics.httpDuration);
  fastify.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', request.id);
    done(null, payload);
  });

  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), {
    jsonDocumentUrl: 'openapi.json',
    yamlDocumentUrl: 'openapi.yaml',
    // The token entered under Authorize survives a reload of /docs (kept in the browser only).
    swaggerOptions: { persistAuthorization: true },
  });
  return app;
}
