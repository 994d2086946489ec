import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { INSTANCE_STATUSES, InstanceStatus } from '@app/registry';

/** Response shapes, for the OpenAPI document (controllers return plain objects of these shapes). */
export class ResolvedInstanceDto {
  @ApiProperty({ example: 'pod-7f9c' }) id: string;
  @ApiProperty({ example: '10.0.3.17' }) address: string;
  @ApiProperty({ example: 8080 }) port: number;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, example: { version: '1.4.2' } }) metadata: Record<string, string>;
  @ApiProperty({ type: [String], example: ['canary'] }) tags: string[];
  @ApiPropertyOptional({ example: 'eu-west-1a' }) zone?: string;
  @ApiProperty({ example: 100 }) weight: number;
  @ApiProperty({ enum: INSTANCE_STATUSES }) status: InstanceStatus;
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
  @ApiProperty({ example: 12, description: 'registered instances, whatever their status' }) instances: number;
}

export class ServiceListResponseDto {
  @ApiProperty({ example: '1042' }) revision: string;
  @ApiProperty() stale: boolean;
  @ApiProperty({ type: [ServiceCountDto] }) services: ServiceCountDto[];
}
