import { Body, Controller, Param, Patch } from '@nestjs/common';
import { ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ParseNamePipe } from '../http/validation';
import { UpdateInstanceDto } from './update-instance.dto';
import { ResolveService } from './resolve.service';

@ApiTags('instances')
@Controller('v1/services/:service/instances')
export class InstanceStatusController {
  constructor(private readonly resolver: ResolveService) {}

  @Patch(':id')
  @ApiOperation({ summary: 'Set an instance UP, DRAINING or DOWN (and optionally replace its metadata); keeps its lease' })
  @ApiOkResponse({ description: 'Updated; lookups on this replica already show it' })
  @ApiNotFoundResponse({ description: 'Unknown instance' })
  @ApiConflictResponse({ description: 'The instance kept changing concurrently; retry' })
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
