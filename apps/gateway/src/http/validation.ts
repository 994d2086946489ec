import { PipeTransform, ValidationError, ValidationPipe } from '@nestjs/common';
import { InvalidRequestError, isValidName, NAME_RULE } from '@app/registry';

/** Path segments that become etcd key segments: rejected before anything else runs. */
export class ParseNamePipe implements PipeTransform<unknown, string> {
  constructor(private readonly field: string) {}

  transform(value: unknown): string {
    if (!isValidName(value)) throw new InvalidRequestError(`${this.field} must be ${NAME_RULE}`, this.field);
    return value;
  }
}

/** Body validation: unknown fields are errors (a typo must not be silently dropped). */
export function bodyValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors: ValidationError[]) => {
      const first = firstLeaf(errors[0]);
      const message = first ? Object.values(first.error.constraints ?? {})[0] : 'invalid body';
      return new InvalidRequestError(message ?? 'invalid body', first?.path);
    },
  });
}

function firstLeaf(error: ValidationError | undefined, prefix = ''): { error: ValidationError; path: string } | undefined {
  if (!error) return undefined;
  const path = prefix ? `${prefix}.${error.property}` : error.property;
  if (error.constraints && Object.keys(error.constraints).length) return { error, path };
  return firstLeaf(error.children?.[0], path);
}
