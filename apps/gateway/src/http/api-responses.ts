import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { INSTANCE_STATUSES, InstanceStatus } from '@app/registry';
import type { ErrorBody } from './error.filter';

/** OpenAPI description of the JSON bodies the v1 endpoints return (documentation only). */
export class ErrorBodyDto implements ErrorBody {
  @ApiProperty({ example: 'invalid_request', description: 'Stable machine-readable code' })
  error: string;

  @ApiProperty({ example: 'port must not be greater than 65535' })
  message: string;

  @ApiPropertyOptional({ example: 'port', description: 'The request field at fault (400 only)' })
  field?: string;
}

export class RegisteredInstanceBodyDto {
  @ApiProperty({ example: '10.0.3.17' })
  address: string;

  @ApiProperty({ example: 8080 })
  port: number;

  @ApiProperty({ example: 30, description: 'Lease TTL in seconds' })
  ttl: number;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, example: { version: '1.4.2' } })
  metadata: Record<string, string>;

  @ApiProperty({ type: [String], example: ['canary'] })
  tags: string[];

  @ApiPropertyOptional({ example: 'eu-west-1a' })
  zone?: string;

  @ApiProperty({ example: 100 })
  weight: number;

  @ApiProperty({ enum: INSTANCE_STATUSES, example: 'UP' })
  status: InstanceStatus;

  @ApiProperty({ example: '2026-01-01T12:00:00.000Z', description: 'When this registration was written' })
  registeredAt: string;
}

export class RegistrationResponseDto {
  @ApiProperty({ example: 'payments' })
  service: string;

  @ApiProperty({ example: 'payments-7d9f-abcde' })
  id: string;

  @ApiProperty({ example: '1042', description: 'etcd revision of the write (decimal string)' })
  revision: string;

  @ApiProperty({ example: '7587862072831918083', description: 'etcd lease the instance key is written with (decimal string)' })
  leaseId: string;

  @ApiProperty({ type: RegisteredInstanceBodyDto })
  instance: RegisteredInstanceBodyDto;
}
