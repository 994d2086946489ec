import { Body, Controller, Delete, HttpCode, Param, Put, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';
import { InstanceRegistrar } from '@app/etcd';
import { REGISTRATION_LIMITS } from '@app/registry';
import { servedOutsideNest } from './fast-routes/served-outside-nest';
import { ApiErrorResponses, ApiNameParams, BODY_ERRORS, RegistrationResponseDto } from './api-responses';
import { RegisterInstanceDto } from './register-instance.dto';
import { ParseNamePipe } from './validation';

@ApiTags('instances')
@ApiNameParams('service', 'id')
@Controller('v1/services/:service/instances')
export class InstancesController {
  constructor(private readonly registrar: InstanceRegistrar) {}

  @Put(':id')
  @ApiOperation({ summary: 'Register an instance, or replace its registration (idempotent)' })
  @ApiCreatedResponse({ description: 'Registered (a new instance)', type: RegistrationResponseDto })
  @ApiOkResponse({ description: 'Replaced an existing registration', type: RegistrationResponseDto })
  @ApiErrorResponses(...BODY_ERRORS, [429, 'Over the API token\'s registration rate limit; retry after `Retry-After`'])
  async register(
    @Param('service', new ParseNamePipe('service')) service: string,
    @Param('id', new ParseNamePipe('id')) id: string,
    @Body() body: RegisterInstanceDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const result = await this.registrar.register(service, id, {
      address: body.address,
      port: body.port,
      ttl: body.ttl ?? REGISTRATION_LIMITS.ttlSeconds.default,
      metadata: body.metadata ?? {},
      tags: body.tags ?? [],
      zone: body.zone,
      weight: body.weight ?? REGISTRATION_LIMITS.weight.default,
      status: body.status ?? 'UP',
    });
    void reply.status(result.created ? 201 : 200);
    const { service: _s, id: _i, ...instance } = result.record;
    return { service, id, revision: result.revision, leaseId: result.leaseId, instance };
  }

  /** Hot path: served by http/fast-routes (answered from memory, never waits on etcd for a known instance). */
  @Put(':id/heartbeat')
  @HttpCode(204)
  @ApiOperation({ summary: 'Heartbeat: keep the instance registered (takes no body; answered from memory)' })
  @ApiNoContentResponse({ description: 'Heartbeat accepted' })
  @ApiErrorResponses(...BODY_ERRORS, [404, 'Unknown instance: register again'], [503, 'Instance unknown to this replica and etcd unavailable; retry after `Retry-After`'])
  heartbeat(@Param('service', new ParseNamePipe('service')) _service: string, @Param('id', new ParseNamePipe('id')) _id: string): Promise<void> {
    return servedOutsideNest();
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Deregister an instance (revokes its lease; takes no body)' })
  @ApiNoContentResponse({ description: 'Deregistered (lease revoked)' })
  @ApiErrorResponses(...BODY_ERRORS, 404)
  async deregister(@Param('service', new ParseNamePipe('service')) service: string, @Param('id', new ParseNamePipe('id')) id: string): Promise<void> {
    await this.registrar.deregister(service, id);
  }
}
