import { applyDecorators } from '@nestjs/common';
import { ApiParam, ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import type { HeaderObject } from '@nestjs/swagger';
import { INSTANCE_STATUSES, InstanceStatus, NAME_PATTERN, NAME_RULE, REGISTRATION_LIMITS as L } from '@app/registry';
import type { ErrorBody } from './error.filter';

/** OpenAPI description of the JSON bodies the v1 endpoints return (documentation only). */
export class ErrorBodyDto implements ErrorBody {
  @ApiProperty({ example: 'invalid_request', description: 'Stable machine-readable code' })
  error: string;

  @ApiProperty({ example: 'port must be an integer from 1 to 65535' })
  message: string;

  @ApiPropertyOptional({ example: 'port', description: 'The request field at fault (400 only)' })
  field?: string;
}

export class RegisteredInstanceBodyDto {
  @ApiProperty({ example: '10.0.3.17' })
  address: string;

  @ApiProperty({ type: 'integer', example: 8080, minimum: L.port.min, maximum: L.port.max })
  port: number;

  @ApiProperty({ type: 'integer', example: 30, description: 'Lease TTL in seconds' })
  ttl: number;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, example: { version: '1.4.2' } })
  metadata: Record<string, string>;

  @ApiProperty({ type: [String], example: ['canary'] })
  tags: string[];

  @ApiPropertyOptional({ example: 'eu-west-1a', description: 'Absent when the instance has no zone (never null)' })
  zone?: string;

  @ApiProperty({ type: 'integer', example: 100 })
  weight: number;

  @ApiProperty({ enum: INSTANCE_STATUSES, example: 'UP' })
  status: InstanceStatus;

  @ApiProperty({ example: '2026-01-01T12:00:00.000Z', description: 'When this registration was written' })
  registeredAt: string;
}

export class InstanceUpdateResponseDto {
  @ApiProperty({ example: 'payments' })
  service: string;

  @ApiProperty({ example: 'payments-7d9f-abcde' })
  id: string;

  @ApiProperty({ example: '1043', description: 'etcd revision of the write (decimal string)' })
  revision: string;

  @ApiProperty({ type: RegisteredInstanceBodyDto })
  instance: RegisteredInstanceBodyDto;
}

export class RegistrationResponseDto extends InstanceUpdateResponseDto {
  @ApiProperty({ example: '7587862072831918083', description: 'etcd lease the instance key is written with (decimal string)' })
  leaseId: string;
}

const RETRY_AFTER: HeaderObject = { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } };

/** What each error status means on the v1 routes; an operation lists the ones it can answer. */
const ERRORS: Record<number, { description: string; headers?: Record<string, HeaderObject> }> = {
  400: { description: 'Invalid path parameter, query parameter or body; `field` names the culprit. Nothing was written' },
  401: {
    description: 'No API token, or an unknown one',
    headers: { 'WWW-Authenticate': { description: 'Bearer challenge; `error="invalid_token"` for an unknown token', schema: { type: 'string' } } },
  },
  403: { description: "The token's role, or its service globs, do not allow this call" },
  404: { description: 'Unknown instance' },
  409: { description: 'The instance kept changing concurrently; retry' },
  413: { description: `Body larger than ${L.bodyMaxBytes / 1024} KiB` },
  414: { description: 'A path segment longer than 1024 characters' },
  415: { description: 'A non-empty body that is not `application/json`' },
  429: { description: 'Over the rate limit; retry after `Retry-After`', headers: { 'Retry-After': RETRY_AFTER } },
  503: {
    description:
      'etcd unreachable, too many etcd writes queued, the etcd database full (`registry_read_only`), etcd refusing the gateway (`etcd_error`: its credentials, a permission; an operator must act), or the replica starting; retry after `Retry-After`',
    headers: { 'Retry-After': RETRY_AFTER },
  },
};

/** Every v1 call can meet these: input is checked first, then the token, and etcd may be away. */
const V1_ERRORS = [400, 401, 403, 503];
/** Calls that read a body; heartbeat and deregister take none, but a body sent anyway is parsed. */
export const BODY_ERRORS = [413, 415];

/** Documents error answers (JSON `{error, message, field?}`): a status, or [status, description]. */
export function ApiErrorResponses(...statuses: Array<number | [number, string]>): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, string>();
  for (const entry of [...V1_ERRORS, ...statuses]) {
    const [status, description] = Array.isArray(entry) ? entry : [entry, ERRORS[entry].description];
    byStatus.set(status, description);
  }
  return applyDecorators(
    ...[...byStatus].map(([status, description]) => ApiResponse({ status, description, type: ErrorBodyDto, headers: ERRORS[status]?.headers })),
  );
}

const nameSchema = { type: 'string' as const, pattern: NAME_PATTERN.source, minLength: 1, maxLength: 128 };

/** The `{service}` and `{id}` path parameters (they become etcd key segments). */
export function ApiNameParams(...names: Array<'service' | 'id'>): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...names.map((name) => ApiParam({ name, schema: nameSchema, description: `${name === 'id' ? 'Instance id' : 'Service name'}: ${NAME_RULE}` })),
    // The router refuses longer segments before any of our code runs (routerOptions.maxParamLength).
    ApiResponse({ status: 414, description: ERRORS[414].description, type: ErrorBodyDto }),
  );
}
