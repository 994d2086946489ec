import { Get, Controller, Param, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';
import { InstanceFilter } from '@app/cache';
import { ApiErrorResponses, ApiNameParams } from '../http/api-responses';
import { servedOutsideNest } from '../http/fast-routes/served-outside-nest';
import { ParseNamePipe } from '../http/validation';
import { BlockingQuery, ParseBlockingQueryPipe, ParseResolveQueryPipe } from './resolve-query.pipe';
import { ApiBlockingQuery, ApiResolveFilters, INDEX_HEADER_NAME, REGISTRY_INDEX_HEADER, ResolveResponseDto, ServiceListResponseDto } from './resolve.dto';
import { ResolveAnswer, ResolveService, ServiceListAnswer } from './resolve.service';
import { untilClientGone } from './until-client-gone';

@ApiTags('resolve')
@Controller('v1/services')
export class ResolveController {
  constructor(private readonly resolver: ResolveService) {}

  @Get()
  @ApiOperation({ summary: 'Services and their instance counts (from memory; kept current by the watch)' })
  @ApiBlockingQuery()
  @ApiOkResponse({ type: ServiceListResponseDto, description: 'Every service with its number of instances', headers: REGISTRY_INDEX_HEADER })
  @ApiErrorResponses(
    [403, 'Only readers and admins may list services'],
    [429, 'This replica already holds MAX_BLOCKING_QUERIES blocking queries; retry after `Retry-After`'],
    [503, 'The replica is starting: it has not read the registry yet; retry after `Retry-After`'],
  )
  async list(@Query(new ParseBlockingQueryPipe()) blocking: BlockingQuery | undefined, @Res({ passthrough: true }) reply: FastifyReply): Promise<ServiceListAnswer> {
    const { index, answer } = await this.resolver.listServicesBlocking(blocking, blocking && untilClientGone(reply));
    void reply.header(INDEX_HEADER_NAME, index);
    return answer;
  }

  /** Hot path: served by http/fast-routes (answered from memory, never from etcd). */
  @Get(':service')
  @ApiOperation({ summary: 'Resolve a service: its UP instances, or those matching the filters' })
  @ApiNameParams('service')
  @ApiResolveFilters()
  @ApiBlockingQuery()
  @ApiOkResponse({ type: ResolveResponseDto, description: 'An unknown service answers 200 with no instances', headers: REGISTRY_INDEX_HEADER })
  @ApiErrorResponses(
    [429, 'This replica already holds MAX_BLOCKING_QUERIES blocking queries; retry after `Retry-After`'],
    [503, 'The replica is starting: it has not read the registry yet; retry after `Retry-After`'],
  )
  resolve(
    @Param('service', new ParseNamePipe('service')) _service: string,
    @Query(new ParseResolveQueryPipe()) _filter: InstanceFilter,
    @Query(new ParseBlockingQueryPipe()) _blocking: BlockingQuery | undefined,
  ): Promise<ResolveAnswer> {
    return servedOutsideNest();
  }
}
