import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
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
import { INSTANCE_STATUSES, InstanceStatus, NAME_PATTERN, REGISTRATION_LIMITS as L } from '@app/registry';

function IsHostAddress(options?: ValidationOptions) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isHostAddress',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} must be an IP address or a host name`, ...options },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' && value.length <= L.addressMaxLength && (isIP(value) || isFQDN(value, { require_tld: false, allow_underscores: false })),
      },
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
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const entries = Object.entries(value);
          return (
            entries.length <= maxKeys &&
            entries.every(([k, v]) => /^[A-Za-z0-9._/-]+$/.test(k) && k.length <= keyMaxLength && typeof v === 'string' && v.length <= valueMaxLength)
          );
        },
      },
    });
}

/** Body of `PUT /v1/services/{service}/instances/{id}`. */
export class RegisterInstanceDto {
  @ApiProperty({ example: '10.0.3.17', description: 'IP address or host name the instance is reached at' })
  @IsString()
  @MaxLength(L.addressMaxLength)
  @IsHostAddress()
  address: string;

  @ApiProperty({ example: 8080, minimum: L.port.min, maximum: L.port.max })
  @IsInt()
  @Min(L.port.min)
  @Max(L.port.max)
  port: number;

  @ApiPropertyOptional({ default: L.ttlSeconds.default, minimum: L.ttlSeconds.min, maximum: L.ttlSeconds.max, description: 'Lease TTL in seconds' })
  @IsOptional()
  @IsInt()
  @Min(L.ttlSeconds.min)
  @Max(L.ttlSeconds.max)
  ttl?: number;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, example: { version: '1.4.2' } })
  @IsOptional()
  @IsStringMap()
  metadata?: Record<string, string>;

  @ApiPropertyOptional({ type: [String], maxItems: L.tags.maxCount, example: ['canary'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(L.tags.maxCount)
  @IsString({ each: true })
  @MaxLength(L.tags.maxLength, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ example: 'eu-west-1a' })
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, { message: 'zone must be 1-128 characters of [A-Za-z0-9._-]' })
  zone?: string;

  @ApiPropertyOptional({ default: L.weight.default, minimum: L.weight.min, maximum: L.weight.max })
  @IsOptional()
  @IsInt()
  @Min(L.weight.min)
  @Max(L.weight.max)
  weight?: number;

  @ApiPropertyOptional({ enum: INSTANCE_STATUSES, default: 'UP' })
  @IsOptional()
  @IsIn(INSTANCE_STATUSES)
  status?: InstanceStatus;
}
