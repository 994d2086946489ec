import { Body, Controller, Param, Patch } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrorResponses, ApiNameParams, BODY_ERRORS, InstanceUpdateResponseDto } from '../http/api-responses';
import { ParseNamePipe } from '../http/validation';
import { UpdateInstanceDto } from './update-instance.dto';
import { ResolveService } from './resolve.service';

@ApiTags('instances')
@Controller('v1/services/:service/instances')
export class InstanceStatusController {
  constructor(private readonly resolver: ResolveService) {}

  @Patch(':id')
  @ApiOperation({ summary: 'Set an instance UP, DRAINING or DOWN (and optionally replace its metadata); keeps its lease' })
  @ApiNameParams('service', 'id')
  @ApiOkResponse({ description: 'Updated; lookups on this replica already show it', type: InstanceUpdateResponseDto })
  @ApiErrorResponses(...BODY_ERRORS, 404, 409)
  async update(
    @Param('service', new ParseNamePipe('service')) service: string,
    @Param('id', new ParseNamePipe('id')) id: string,
    @Body() body: UpdateInstanceDto,
  ) {
    const { record, revision } = await this.resolver.updateInstance(service, id, { status: body.status, metadata: body.metadata });
    const { service: _s, id: _i, ...instance } = record;
    return { service, id, revision, instance };
  }
}
