import { Get, Controller, Param, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiServiceUnavailableResponse, ApiTags, ApiTooManyRequestsResponse } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';
import { InstanceFilter } from '@app/cache';
import { ParseNamePipe } from '../http/validation';
import { BlockingQuery, ParseBlockingQueryPipe, ParseResolveQueryPipe } from './resolve-query.pipe';
import { ResolveResponseDto, ServiceListResponseDto } from './resolve.dto';
import { ResolveAnswer, ResolveService, ServiceListAnswer } from './resolve.service';

/** Response header of both GET routes: the index a blocking query passes back as `?index=`. */
export const REGISTRY_INDEX_HEADER = 'x-registry-index';

const INDEX_QUERY = {
  name: 'index',
  required: false,
  type: String,
  description: 'Blocking query: hold the answer until the content changes past this X-Registry-Index (decimal digits)',
} as const;
const WAIT_QUERY = {
  name: 'wait',
  required: false,
  type: String,
  description: 'Longest hold of a blocking query, e.g. 500ms, 30s, 5m (default 60s, at most 10m; plus up to 1/16 jitter)',
} as const;
const INDEX_HEADER = {
  name: 'X-Registry-Index',
  description: 'Revision at which this content last changed (on this replica); pass it back as ?index=',
} as const;
const TOO_MANY_BLOCKING = { description: 'MAX_BLOCKING_QUERIES are held on this replica; retry after Retry-After seconds' } as const;

@ApiTags('resolve')
@Controller('v1/services')
export class ResolveController {
  constructor(private readonly resolver: ResolveService) {}

  @Get()
  @ApiOperation({ summary: 'Services and their instance counts (cached; kept current by the watch)' })
  @ApiQuery(INDEX_QUERY)
  @ApiQuery(WAIT_QUERY)
  @ApiOkResponse({ type: ServiceListResponseDto, headers: { [INDEX_HEADER.name]: INDEX_HEADER } })
  @ApiTooManyRequestsResponse(TOO_MANY_BLOCKING)
  async list(@Query(new ParseBlockingQueryPipe()) blocking: BlockingQuery | undefined, @Res({ passthrough: true }) reply: FastifyReply): Promise<ServiceListAnswer> {
    const { index, answer } = await this.resolver.listServicesBlocking(blocking, blocking && untilClientGone(reply));
    void reply.header(REGISTRY_INDEX_HEADER, index);
    return answer;
  }

  /** Hot path: answered from memory; etcd is read only on a miss, through one shared read. */
  @Get(':service')
  @ApiOperation({ summary: 'Resolve a service: its UP instances, or those matching the filters' })
  @ApiQuery({ name: 'tag', required: false, isArray: true, type: String, description: 'instances carrying every given tag' })
  @ApiQuery({ name: 'zone', required: false, type: String })
  @ApiQuery({ name: 'meta', required: false, isArray: true, type: String, description: 'key=value metadata, every pair must match' })
  @ApiQuery({ name: 'status', required: false, type: String, description: 'UP (default), DRAINING, DOWN or all' })
  @ApiQuery(INDEX_QUERY)
  @ApiQuery(WAIT_QUERY)
  @ApiOkResponse({ type: ResolveResponseDto, description: 'An unknown service answers 200 with no instances', headers: { [INDEX_HEADER.name]: INDEX_HEADER } })
  @ApiTooManyRequestsResponse(TOO_MANY_BLOCKING)
  @ApiServiceUnavailableResponse({ description: 'etcd is unreachable and the service has never been cached' })
  async resolve(
    @Param('service', new ParseNamePipe('service')) service: string,
    @Query(new ParseResolveQueryPipe()) filter: InstanceFilter,
    @Query(new ParseBlockingQueryPipe()) blocking: BlockingQuery | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ResolveAnswer> {
    const { index, answer } = await this.resolver.resolveBlocking(service, filter, blocking, blocking && untilClientGone(reply));
    void reply.header(REGISTRY_INDEX_HEADER, index);
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
