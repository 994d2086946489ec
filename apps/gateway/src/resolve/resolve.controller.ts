import { Get, Controller, Param, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';
import { InstanceFilter } from '@app/cache';
import { ApiErrorResponses, ApiNameParams } from '../http/api-responses';
import { ParseNamePipe } from '../http/validation';
import { BlockingQuery, ParseBlockingQueryPipe, ParseResolveQueryPipe } from './resolve-query.pipe';
import { ApiBlockingQuery, ApiResolveFilters, REGISTRY_INDEX_HEADER, ResolveResponseDto, ServiceListResponseDto } from './resolve.dto';
import { ResolveAnswer, ResolveService, ServiceListAnswer } from './resolve.service';

/** Response header of both GET routes: the index a blocking query passes back as `?index=`. */
const INDEX_HEADER_NAME = 'x-registry-index';

@ApiTags('resolve')
@Controller('v1/services')
export class ResolveController {
  constructor(private readonly resolver: ResolveService) {}

  @Get()
  @ApiOperation({ summary: 'Services and their instance counts (cached; kept current by the watch)' })
  @ApiBlockingQuery()
  @ApiOkResponse({ type: ServiceListResponseDto, description: 'Every service with its number of instances', headers: REGISTRY_INDEX_HEADER })
  @ApiErrorResponses([403, 'Only readers and admins may list services'], [429, 'This replica already holds MAX_BLOCKING_QUERIES blocking queries; retry after `Retry-After`'])
  async list(@Query(new ParseBlockingQueryPipe()) blocking: BlockingQuery | undefined, @Res({ passthrough: true }) reply: FastifyReply): Promise<ServiceListAnswer> {
    const { index, answer } = await this.resolver.listServicesBlocking(blocking, blocking && untilClientGone(reply));
    void reply.header(INDEX_HEADER_NAME, index);
    return answer;
  }

  /** Hot path: answered from memory; etcd is read only on a miss, through one shared read. */
  @Get(':service')
  @ApiOperation({ summary: 'Resolve a service: its UP instances, or those matching the filters' })
  @ApiNameParams('service')
  @ApiResolveFilters()
  @ApiBlockingQuery()
  @ApiOkResponse({ type: ResolveResponseDto, description: 'An unknown service answers 200 with no instances', headers: REGISTRY_INDEX_HEADER })
  @ApiErrorResponses(
    [429, 'This replica already holds MAX_BLOCKING_QUERIES blocking queries; retry after `Retry-After`'],
    [503, 'etcd is unreachable and the service has never been cached; retry after `Retry-After`'],
  )
  async resolve(
    @Param('service', new ParseNamePipe('service')) service: string,
    @Query(new ParseResolveQueryPipe()) filter: InstanceFilter,
    @Query(new ParseBlockingQueryPipe()) blocking: BlockingQuery | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ResolveAnswer> {
    const { index, answer } = await this.resolver.resolveBlocking(service, filter, blocking, blocking && untilClientGone(reply));
    void reply.header(INDEX_HEADER_NAME, index);
    return answer;
  }
}

/** Aborts when the connection closes before the answer is sent: a client that gave up frees its slot at once. */
function untilClientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.abort();
  });
  return gone.signal;
}
