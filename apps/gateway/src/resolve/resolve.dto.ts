import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiQuery } from '@nestjs/swagger';
import type { HeaderObject } from '@nestjs/swagger';
import { INSTANCE_STATUSES, InstanceStatus, NAME_PATTERN, REGISTRATION_LIMITS as L } from '@app/registry';

/** Response shapes, for the OpenAPI document (controllers return plain objects of these shapes). */
export class ResolvedInstanceDto {
  @ApiProperty({ example: 'pod-7f9c' }) id: string;
  @ApiProperty({ example: '10.0.3.17' }) address: string;
  @ApiProperty({ type: 'integer', example: 8080, minimum: L.port.min, maximum: L.port.max }) port: number;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, example: { version: '1.4.2' } }) metadata: Record<string, string>;
  @ApiProperty({ type: [String], example: ['canary'] }) tags: string[];
  @ApiPropertyOptional({ example: 'eu-west-1a', description: 'Absent when the instance has no zone (never null)' }) zone?: string;
  @ApiProperty({ type: 'integer', example: 100 }) weight: number;
  @ApiProperty({ enum: INSTANCE_STATUSES }) status: InstanceStatus;
  @ApiPropertyOptional({ example: '2026-11-26T09:12:44.512Z', description: 'When the instance last registered (absent in copies cached before this field existed)' })
  registeredAt?: string;
}

export class ResolveResponseDto {
  @ApiProperty({ example: 'payments' }) service: string;
  @ApiProperty({ example: '1042', description: 'etcd revision the answer reflects (a decimal string, like etcd int64s)' }) revision: string;
  @ApiProperty({ description: 'true when etcd could not confirm the snapshot recently (etcd unreachable): the last known instances' })
  stale: boolean;
  @ApiProperty({ type: [ResolvedInstanceDto] }) instances: ResolvedInstanceDto[];
}

export class ServiceCountDto {
  @ApiProperty({ example: 'payments' }) service: string;
  @ApiProperty({ type: 'integer', minimum: 0, example: 12, description: 'registered instances, whatever their status' }) instances: number;
}

export class ServiceListResponseDto {
  @ApiProperty({ example: '1042' }) revision: string;
  @ApiProperty() stale: boolean;
  @ApiProperty({ type: [ServiceCountDto] }) services: ServiceCountDto[];
}

/** Response header of both GET routes: the index a blocking query passes back as `?index=`. */
export const INDEX_HEADER_NAME = 'x-registry-index';

/** On the 200s of both lookups: the revision to pass as `index` to wait for the next change. */
export const REGISTRY_INDEX_HEADER: Record<string, HeaderObject> = {
  'X-Registry-Index': { description: 'etcd revision of the answer; send it back as `index` to wait for a change', schema: { type: 'string', pattern: '^[0-9]+$' } },
};

/** Blocking-query parameters shared by both lookups. */
export function ApiBlockingQuery(): MethodDecorator {
  return applyDecorators(
    ApiQuery({
      name: 'index',
      required: false,
      schema: { type: 'string', pattern: '^[0-9]{1,16}$' },
      description: 'Blocking query: answer once the revision is above this one (the `X-Registry-Index` of an earlier answer), or when `wait` has passed',
    }),
    ApiQuery({
      name: 'wait',
      required: false,
      // No `example`: Swagger UI's "Try it out" would send it with every lookup.
      schema: { type: 'string', pattern: '^[0-9]{1,7}(ms|s|m)$' },
      description: 'How long a blocking query may wait, like `30s` or `5m`; at most `10m`',
    }),
  );
}

/** The filters of `GET /v1/services/{service}` (see ParseResolveQueryPipe). */
export function ApiResolveFilters(): MethodDecorator {
  return applyDecorators(
    ApiQuery({
      name: 'tag',
      required: false,
      isArray: true,
      schema: { type: 'array', items: { type: 'string', minLength: 1, maxLength: L.tags.maxLength } },
      description: 'instances carrying every given tag',
    }),
    ApiQuery({ name: 'zone', required: false, schema: { type: 'string', pattern: NAME_PATTERN.source, minLength: 1, maxLength: L.zone.maxLength } }),
    ApiQuery({
      name: 'meta',
      required: false,
      isArray: true,
      schema: { type: 'array', items: { type: 'string', pattern: '^[^=]+=.*$' } },
      description: 'key=value metadata, every pair must match',
    }),
    ApiQuery({ name: 'status', required: false, schema: { type: 'string', enum: [...INSTANCE_STATUSES, 'all'] }, description: 'UP (default), DRAINING, DOWN or all (any case)' }),
  );
}
