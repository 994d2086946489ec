import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrorResponses, BODY_ERRORS } from './api-responses';
import { servedOutsideNest } from './fast-routes/served-outside-nest';
import { HeartbeatBatchDto, HeartbeatBatchResponseDto } from './heartbeat-batch.dto';

/**
 * `POST /v1/heartbeats`: one request marks up to 1000 instances alive (a node agent or sidecar
 * heartbeating for every pod on its node). Each instance is exactly a `PUT .../heartbeat`: answered
 * from memory, never waiting on etcd for a known instance; the answer lists one outcome per instance.
 * Served by http/fast-routes; declared here for the OpenAPI document.
 */
@ApiTags('instances')
@Controller('v1/heartbeats')
export class HeartbeatBatchController {
  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Heartbeat many instances at once (up to 1000; for node agents and sidecars)' })
  @ApiOkResponse({ description: 'One outcome per instance, in request order', type: HeartbeatBatchResponseDto })
  @ApiErrorResponses(...BODY_ERRORS)
  heartbeat(@Body() _body: HeartbeatBatchDto): Promise<HeartbeatBatchResponseDto> {
    return servedOutsideNest();
  }
}
