import { Get, Controller, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { InstanceFilter } from '@app/cache';
import { ParseNamePipe } from '../http/validation';
import { ParseResolveQueryPipe } from './resolve-query.pipe';
import { ResolveResponseDto, ServiceListResponseDto } from './resolve.dto';
import { ResolveAnswer, ResolveService } from './resolve.service';

@ApiTags('resolve')
@Controller('v1/services')
export class ResolveController {
  constructor(private readonly resolver: ResolveService) {}

  @Get()
  @ApiOperation({ summary: 'Services and their instance counts (cached; kept current by the watch)' })
  @ApiOkResponse({ type: ServiceListResponseDto })
  list() {
    return this.resolver.listServices();
  }

  /** Hot path: answered from memory; etcd is read only on a miss, through one shared read. */
  @Get(':service')
  @ApiOperation({ summary: 'Resolve a service: its UP instances, or those matching the filters' })
  @ApiQuery({ name: 'tag', required: false, isArray: true, type: String, description: 'instances carrying every given tag' })
  @ApiQuery({ name: 'zone', required: false, type: String })
  @ApiQuery({ name: 'meta', required: false, isArray: true, type: String, description: 'key=value metadata, every pair must match' })
  @ApiQuery({ name: 'status', required: false, type: String, description: 'UP (default), DRAINING, DOWN or all' })
  @ApiOkResponse({ type: ResolveResponseDto, description: 'An unknown service answers 200 with no instances' })
  @ApiServiceUnavailableResponse({ description: 'etcd is unreachable and the service has never been cached' })
  resolve(@Param('service', new ParseNamePipe('service')) service: string, @Query(new ParseResolveQueryPipe()) filter: InstanceFilter): Promise<ResolveAnswer> {
    return this.resolver.resolve(service, filter);
  }
}
