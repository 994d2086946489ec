import { Body, Controller, Delete, HttpCode, Param, Put, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { FastifyReply } from 'fastify';
import { InstanceRegistrar } from '@app/etcd';
import { REGISTRATION_LIMITS } from '@app/registry';
import { ErrorBodyDto, RegistrationResponseDto } from './api-responses';
import { RegisterInstanceDto } from './register-instance.dto';
import { ParseNamePipe } from './validation';

@ApiTags('instances')
@Controller('v1/services/:service/instances')
export class InstancesController {
  constructor(private readonly registrar: InstanceRegistrar) {}

  @Put(':id')
  @ApiCreatedResponse({ description: 'Registered (a new instance)', type: RegistrationResponseDto })
  @ApiOkResponse({ description: 'Replaced an existing registration', type: RegistrationResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid name or body; `field` names the culprit', type: ErrorBodyDto })
  @ApiServiceUnavailableResponse({ description: 'etcd unavailable or too many writes queued; retry after `Retry-After`', type: ErrorBodyDto })
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

  /** Hot path: answered from memory, never waits on etcd for a known instance. */
  @Put(':id/heartbeat')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Heartbeat accepted' })
  @ApiNotFoundResponse({ description: 'Unknown instance: register again', type: ErrorBodyDto })
  @ApiServiceUnavailableResponse({ description: 'Instance unknown to this replica and etcd unavailable; retry', type: ErrorBodyDto })
  async heartbeat(@Param('service', new ParseNamePipe('service')) service: string, @Param('id', new ParseNamePipe('id')) id: string): Promise<void> {
    await this.registrar.heartbeat(service, id);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Deregistered (lease revoked)' })
  @ApiNotFoundResponse({ description: 'Unknown instance', type: ErrorBodyDto })
  @ApiServiceUnavailableResponse({ description: 'etcd unavailable; retry after `Retry-After`', type: ErrorBodyDto })
  async deregister(@Param('service', new ParseNamePipe('service')) service: string, @Param('id', new ParseNamePipe('id')) id: string): Promise<void> {
    await this.registrar.deregister(service, id);
  }
}
