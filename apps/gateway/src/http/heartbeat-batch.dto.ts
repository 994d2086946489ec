import { ApiProperty } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { HEARTBEAT_BATCH_LIMITS, NAME_RULE } from '@app/registry';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const NAME_SCHEMA = { pattern: NAME_PATTERN.source, minLength: 1, maxLength: 128 };

export class InstanceRefDto {
  @ApiProperty({ example: 'payments', ...NAME_SCHEMA })
  @IsString()
  @MaxLength(128)
  @Matches(NAME_PATTERN, { message: `service must be ${NAME_RULE}` })
  service: string;

  @ApiProperty({ example: 'pod-7f9c', ...NAME_SCHEMA })
  @IsString()
  @MaxLength(128)
  @Matches(NAME_PATTERN, { message: `id must be ${NAME_RULE}` })
  id: string;
}

export class HeartbeatBatchDto {
  @ApiProperty({ type: [InstanceRefDto], minItems: 1, maxItems: HEARTBEAT_BATCH_LIMITS.maxInstances, description: 'The instances to mark alive' })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(HEARTBEAT_BATCH_LIMITS.maxInstances)
  @ValidateNested({ each: true })
  @Type(() => InstanceRefDto)
  instances: InstanceRefDto[];
}

export const BATCH_OUTCOMES = ['accepted', 'not_found', 'forbidden', 'unavailable'] as const;
export type BatchOutcome = (typeof BATCH_OUTCOMES)[number];

export class InstanceOutcomeDto {
  @ApiProperty({ example: 'payments', ...NAME_SCHEMA }) service: string;
  @ApiProperty({ example: 'pod-7f9c', ...NAME_SCHEMA }) id: string;
  @ApiProperty({
    enum: BATCH_OUTCOMES,
    description:
      '`accepted` (as a 204 heartbeat), `not_found` (register it again), `forbidden` (outside the services of an agent token), `unavailable` (unknown to this replica and etcd unreachable: retry)',
  })
  result: BatchOutcome;
}

export class HeartbeatBatchResponseDto {
  @ApiProperty({ type: [InstanceOutcomeDto], description: 'One outcome per instance, in request order' })
  results: InstanceOutcomeDto[];
}
