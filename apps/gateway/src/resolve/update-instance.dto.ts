import { ApiProperty, PickType } from '@nestjs/swagger';
import { IsIn } from 'class-validator';
import { INSTANCE_STATUSES, InstanceStatus } from '@app/registry';
import { RegisterInstanceDto } from '../http/register-instance.dto';

/**
 * Body of `PATCH /v1/services/{service}/instances/{id}`. `metadata` keeps the registration's
 * validation rules (PickType copies them); when given it replaces the instance's metadata.
 */
export class UpdateInstanceDto extends PickType(RegisterInstanceDto, ['metadata'] as const) {
  @ApiProperty({ enum: INSTANCE_STATUSES, example: 'DRAINING', description: 'UP receives traffic; DRAINING and DOWN are resolved only when asked for' })
  @IsIn(INSTANCE_STATUSES, { message: `status must be one of ${INSTANCE_STATUSES.join(', ')}` })
  status: InstanceStatus;
}
