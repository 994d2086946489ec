import { Body, Controller, Delete, HttpCode, Param, Put } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { InstanceRegistrar } from '@app/etcd';
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
  /** Served by http/fast-routes (a plainly valid body skips class-validator; any other goes through the same pipe). */
  register(
    @Param('service', new ParseNamePipe('service')) _service: string,
    @Param('id', new ParseNamePipe('id')) _id: string,
    @Body() _body: RegisterInstanceDto,
  ): Promise<RegistrationResponseDto> {
    return servedOutsideNest();
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
