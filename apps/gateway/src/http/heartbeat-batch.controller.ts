import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { FastifyRequest } from 'fastify';
import { InstanceRegistrar } from '@app/etcd';
import { InstanceNotFoundError, RegistryUnavailableError } from '@app/registry';
import { tokenOf } from '../auth/api-auth.guard';
import { ApiErrorResponses, BODY_ERRORS } from './api-responses';
import { BatchOutcome, HeartbeatBatchDto, HeartbeatBatchResponseDto } from './heartbeat-batch.dto';

/**
 * `POST /v1/heartbeats`: one request marks up to 1000 instances alive (a node agent or sidecar
 * heartbeating for every pod on its node). Each instance is exactly a `PUT .../heartbeat`: answered
 * from memory, never waiting on etcd for a known instance; the answer lists one outcome per instance.
 */
@ApiTags('instances')
@Controller('v1/heartbeats')
export class HeartbeatBatchController {
  constructor(private readonly registrar: InstanceRegistrar) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Heartbeat many instances at once (up to 1000; for node agents and sidecars)' })
  @ApiOkResponse({ description: 'One outcome per instance, in request order', type: HeartbeatBatchResponseDto })
  @ApiErrorResponses(...BODY_ERRORS)
  async heartbeat(@Body() body: HeartbeatBatchDto, @Req() request: FastifyRequest): Promise<HeartbeatBatchResponseDto> {
    const token = tokenOf(request);
    const results = await Promise.all(
      body.instances.map(async ({ service, id }) => {
        // An agent token may heartbeat only the services its globs cover (the route itself is open to agents).
        if (token && token.role === 'agent' && !token.coversService(service)) return { service, id, result: 'forbidden' as BatchOutcome };
        return { service, id, result: await this.outcome(service, id) };
      }),
    );
    return { results };
  }

  private async outcome(service: string, id: string): Promise<BatchOutcome> {
    try {
      await this.registrar.heartbeat(service, id);
      return 'accepted';
    } catch (err) {
      if (err instanceof InstanceNotFoundError) return 'not_found';
      if (err instanceof RegistryUnavailableError) return 'unavailable';
      throw err;
    }
  }
}
