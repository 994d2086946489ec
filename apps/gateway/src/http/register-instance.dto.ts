import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { applyDecorators } from '@nestjs/common';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsInt,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  registerDecorator,
  ValidationOptions,
  isFQDN,
  isIP,
} from 'class-validator';
import { INSTANCE_STATUSES, InstanceRegistration, InstanceStatus, NAME_PATTERN, REGISTRATION_LIMITS as L } from '@app/registry';
import { Optional } from './validation';

/** One message for the type and both bounds, so `"port": "80"` is told it must be an integer. */
function IntegerBetween(min: number, max: number) {
  const message = `$property must be an integer from ${min} to ${max}`;
  return applyDecorators(IsInt({ message }), Min(min, { message }), Max(max, { message }));
}

/** The address rule (the decorator below and the registration route's plain-body check share it). */
export function isHostAddress(value: unknown): value is string {
  return typeof value === 'string' && value.length <= L.addressMaxLength && (isIP(value) || isFQDN(value, { require_tld: false, allow_underscores: false }));
}

const METADATA_KEY = /^[A-Za-z0-9._/-]+$/;

/** The metadata rule (shared like isHostAddress). */
export function isStringMap(value: unknown): value is Record<string, string> {
  const { maxKeys, keyMaxLength, valueMaxLength } = L.metadata;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const entries = Object.entries(value);
  return entries.length <= maxKeys && entries.every(([k, v]) => METADATA_KEY.test(k) && k.length <= keyMaxLength && typeof v === 'string' && v.length <= valueMaxLength);
}

function IsHostAddress(options?: ValidationOptions) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isHostAddress',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} must be an IP address or a host name`, ...options },
      validator: { validate: isHostAddress },
    });
}

function IsStringMap(options?: ValidationOptions) {
  const { maxKeys, keyMaxLength, valueMaxLength } = L.metadata;
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isStringMap',
      target: target.constructor,
      propertyName,
      options: {
        message: `${propertyName} must be an object of at most ${maxKeys} string values, keys 1-${keyMaxLength} characters of [A-Za-z0-9._/-], values at most ${valueMaxLength} characters`,
        ...options,
      },
      validator: { validate: isStringMap },
    });
}

/** Body of `PUT /v1/services/{service}/instances/{id}`. */
export class RegisterInstanceDto {
  @ApiProperty({ example: '10.0.3.17', maxLength: L.addressMaxLength, description: 'IP address or host name the instance is reached at' })
  @IsString()
  @MaxLength(L.addressMaxLength)
  @IsHostAddress()
  address: string;

  @ApiProperty({ type: 'integer', example: 8080, minimum: L.port.min, maximum: L.port.max })
  @IntegerBetween(L.port.min, L.port.max)
  port: number;

  @ApiPropertyOptional({ type: 'integer', default: L.ttlSeconds.default, minimum: L.ttlSeconds.min, maximum: L.ttlSeconds.max, description: 'Lease TTL in seconds' })
  @Optional()
  @IntegerBetween(L.ttlSeconds.min, L.ttlSeconds.max)
  ttl?: number;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: L.metadata.valueMaxLength },
    maxProperties: L.metadata.maxKeys,
    example: { version: '1.4.2' },
    description: `At most ${L.metadata.maxKeys} entries; keys 1-${L.metadata.keyMaxLength} characters of [A-Za-z0-9._/-]`,
  })
  @Optional()
  @IsStringMap()
  metadata?: Record<string, string>;

  @ApiPropertyOptional({ type: 'string', isArray: true, maxItems: L.tags.maxCount, items: { type: 'string', maxLength: L.tags.maxLength }, example: ['canary'] })
  @Optional()
  @IsArray()
  @ArrayMaxSize(L.tags.maxCount)
  @IsString({ each: true })
  @MaxLength(L.tags.maxLength, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ example: 'eu-west-1a', pattern: NAME_PATTERN.source, minLength: 1, maxLength: L.zone.maxLength })
  @Optional()
  @IsString()
  @Matches(NAME_PATTERN, { message: 'zone must be 1-128 characters of [A-Za-z0-9._-]' })
  zone?: string;

  @ApiPropertyOptional({ type: 'integer', default: L.weight.default, minimum: L.weight.min, maximum: L.weight.max })
  @Optional()
  @IntegerBetween(L.weight.min, L.weight.max)
  weight?: number;

  @ApiPropertyOptional({ enum: INSTANCE_STATUSES, default: 'UP' })
  @Optional()
  @IsIn(INSTANCE_STATUSES, { message: `status must be one of ${INSTANCE_STATUSES.join(', ')}` })
  status?: InstanceStatus;
}

/** A validated body as the registrar takes it: the documented defaults filled in. */
export function registrationFrom(body: RegisterInstanceDto): InstanceRegistration {
  return {
    address: body.address,
    port: body.port,
    ttl: body.ttl ?? L.ttlSeconds.default,
    metadata: body.metadata ?? {},
    tags: body.tags ?? [],
    zone: body.zone,
    weight: body.weight ?? L.weight.default,
    status: body.status ?? 'UP',
  };
}
