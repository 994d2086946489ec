import { Controller, Get, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService, HealthIndicatorResult, HealthCheckStatus } from '@nestjs/terminus';
import { FastifyReply } from 'fastify';
import { ReadinessService } from './readiness.service';

/** Terminus's result shape, plus `degraded`: serving, but a dependency is down (listed in `error`). */
export type ReadinessBody = Omit<HealthCheckResult, 'status'> & { status: HealthCheckStatus | 'degraded' | 'starting' };

const indicatorMap = (example: object) => ({
  type: 'object',
  example,
  additionalProperties: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['up', 'down'] } }, additionalProperties: true },
});
const readinessSchema = (status: string, error: object, details: object) => ({
  type: 'object',
  required: ['status', 'details'],
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded', 'starting', 'error', 'shutting_down'], example: status },
    info: indicatorMap({}),
    error: indicatorMap(error),
    details: indicatorMap(details),
  },
});
const DEGRADED_EXAMPLE = {
  serving: { status: 'up', lookups: 'memory (stale: the watch has not confirmed them lately)', writes: 'unavailable (etcd unreachable or refusing the gateway)' },
  etcd: { status: 'down', readyConnections: 0, poolSize: 2, lastSuccessAgoMs: 21500 },
  keepalive: { status: 'down', open: 0, total: 2, lastAnswerAgoMs: 20900, instances: 812 },
  watch: { status: 'down', revision: 18422, lookupViews: 57 },
  redis: { status: 'up', state: 'ready' },
};
const ERROR_EXAMPLE = {
  serving: { status: 'down', message: 'starting: the initial read of the registry (every instance and its lease) is not done yet' },
  etcd: { status: 'down', readyConnections: 0, poolSize: 2, lastSuccessAgoMs: null },
};

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly readiness: ReadinessService,
  ) {}

  @Get('live')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({ summary: 'Liveness: the process serves HTTP (200 while it is up, also while it shuts down)' })
  @ApiOkResponse({ description: '`status` is `ok`, or `shutting_down` while the replica drains', schema: readinessSchema('ok', {}, {}) })
  async live(): Promise<HealthCheckResult> {
    return checkResult(this.health, [{ process: { status: 'up', uptimeSeconds: Math.round(process.uptime()) } }]);
  }

  @Get('ready')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({
    summary: 'Readiness: this replica can answer',
    description:
      'A dependency that is down (etcd, keepalive streams, watch, Redis) is listed in `error` and makes `status` `degraded`, but ' +
      'the answer stays 200 once the replica has read the registry: lookups are answered from memory and heartbeats of known instances too. Every ' +
      'replica shares the same etcd and Redis, and taking all of them out of rotation at once would turn a degraded registry into an outage.',
  })
  @ApiOkResponse({ description: '`ok` (all up) or `degraded` (serving, some dependency down)', schema: readinessSchema('degraded', { etcd: DEGRADED_EXAMPLE.etcd }, DEGRADED_EXAMPLE) })
  @ApiServiceUnavailableResponse({ description: '`starting` (the initial read of the registry is not done) or `shutting_down`', schema: readinessSchema('error', ERROR_EXAMPLE, ERROR_EXAMPLE) })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadinessBody> {
    const { serving, starting, indicators } = this.readiness.assess();
    const result = await checkResult(this.health, indicators);
    if (result.status === 'ok') return result;
    if (result.status === 'error' && serving) return { ...result, status: 'degraded' };
    void reply.status(503);
    if (result.status === 'error' && starting) return { ...result, status: 'starting' };
    return result;
  }
}

/**
 * Terminus's check(), with the result as a value: terminus throws a 503 exception for any `down`
 * indicator and while shutting down, and the global error filter would flatten its body.
 */
async function checkResult(health: HealthCheckService, indicators: HealthIndicatorResult[]): Promise<HealthCheckResult> {
  try {
    return await health.check(indicators.map((result) => () => result));
  } catch (err) {
    if (err instanceof ServiceUnavailableException) return err.getResponse() as HealthCheckResult;
    throw err;
  }
}
