import { Controller, Get, Query } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiQuery, ApiTags } from '@nestjs/swagger';
import { InvalidRequestError, isValidName, NAME_PATTERN, NAME_RULE } from '@app/registry';
import { ApiErrorResponses } from '../../http/api-responses';
import { parseResolveQuery } from '../../resolve/resolve-query.pipe';
import { ApiResolveFilters } from '../../resolve/resolve.dto';
import { ResolveService } from '../../resolve/resolve.service';
import { DoorRouteConfig } from '../door-requests';
import { TargetGroup, targetGroupsOf } from './target-groups';

class TargetGroupDto implements TargetGroup {
  @ApiProperty({ type: [String], example: ['10.0.3.17:8080'], description: '`address:port` of each instance (an IPv6 address in brackets)' })
  targets: string[];

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    example: { service: 'payments', status: 'UP', zone: 'eu-west-1a', tags: ',canary,v2,', metadata_version: '1.4.2' },
    description: '`service`, `status`, `zone` (when set), `tags` (`,a,b,`, when any) and `metadata_<key>` (characters outside [A-Za-z0-9_] as `_`)',
  })
  labels: Record<string, string>;
}

const SD_ROUTE: DoorRouteConfig = { door: 'prometheus_sd', operation: 'targets' };

/**
 * Prometheus `http_sd_configs`: the registry's instances as target groups, read like every lookup from
 * the directory (listServices, then resolve per service) with resolve's filters.
 */
@ApiTags('service discovery')
@Controller('v1/sd')
export class PrometheusSdController {
  constructor(private readonly resolver: ResolveService) {}

  @Get('prometheus')
  @RouteConfig(SD_ROUTE)
  @ApiOperation({ summary: 'Prometheus http_sd: instances as target groups, per service, with the filters of resolve (UP instances unless `status` says otherwise)' })
  @ApiQuery({
    name: 'service',
    required: false,
    isArray: true,
    schema: { type: 'array', items: { type: 'string', pattern: NAME_PATTERN.source, minLength: 1, maxLength: 128 } },
    description: 'only these services (default: every service)',
  })
  @ApiResolveFilters()
  @ApiOkResponse({ type: [TargetGroupDto], description: 'One group per service and label set; `[]` when nothing matches' })
  @ApiErrorResponses([403, 'Only readers and admins may list targets'])
  async targets(@Query() query: Record<string, unknown>): Promise<TargetGroup[]> {
    const { service, index, wait, ...filters } = query ?? {};
    if (index !== undefined || wait !== undefined) throw new InvalidRequestError('http_sd answers at once: index and wait are not taken here', index !== undefined ? 'index' : 'wait');
    const filter = parseResolveQuery(filters);
    const wanted = service === undefined ? undefined : serviceNames(service);
    const services = wanted ?? (await this.resolver.listServices()).services.map((s) => s.service);
    const answers = await Promise.all(services.map(async (name) => targetGroupsOf(name, (await this.resolver.resolve(name, filter)).instances)));
    return answers.flat();
  }
}

function serviceNames(value: unknown): string[] {
  const names = Array.isArray(value) ? value : [value];
  for (const name of names) if (!isValidName(name)) throw new InvalidRequestError(`service must be ${NAME_RULE}`, 'service');
  return names as string[];
}
