import { Get, Controller, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { InstanceFilter } from '@app/cache';
import { ApiErrorResponses, ApiNameParams } from '../http/api-responses';
import { ParseNamePipe } from '../http/validation';
import { ParseResolveQueryPipe } from './resolve-query.pipe';
import { ApiBlockingQuery, ApiResolveFilters, REGISTRY_INDEX_HEADER, ResolveResponseDto, ServiceListResponseDto } from './resolve.dto';
import { ResolveAnswer, ResolveService } from './resolve.service';

@ApiTags('resolve')
@Controller('v1/services')
export class ResolveController {
  constructor(private readonly resolver: ResolveService) {}

  @Get()
  @ApiOperation({ summary: 'Services and their instance counts (cached; kept current by the watch)' })
  @ApiBlockingQuery()
  @ApiOkResponse({ type: ServiceListResponseDto, description: 'Every service with its number of instances', headers: REGISTRY_INDEX_HEADER })
  @ApiErrorResponses([403, 'Only readers and admins may list services'], [429, 'Too many blocking queries waiting; retry after `Retry-After`'])
  list() {
    return this.resolver.listServices();
  }

  /** Hot path: answered from memory; etcd is read only on a miss, through one shared read. */
  @Get(':service')
  @ApiOperation({ summary: 'Resolve a service: its UP instances, or those matching the filters' })
  @ApiNameParams('service')
  @ApiResolveFilters()
  @ApiBlockingQuery()
  @ApiOkResponse({ type: ResolveResponseDto, description: 'An unknown service answers 200 with no instances', headers: REGISTRY_INDEX_HEADER })
  @ApiErrorResponses(
    [429, 'Too many blocking queries waiting; retry after `Retry-After`'],
    [503, 'etcd is unreachable and the service has never been cached; retry after `Retry-After`'],
  )
  resolve(@Param('service', new ParseNamePipe('service')) service: string, @Query(new ParseResolveQueryPipe()) filter: InstanceFilter): Promise<ResolveAnswer> {
    return this.resolver.resolve(service, filter);
  }
}
