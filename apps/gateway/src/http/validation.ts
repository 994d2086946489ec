import { ArgumentMetadata, PipeTransform, ValidationError, ValidationPipe } from '@nestjs/common';
import { InvalidRequestError, isValidName, NAME_RULE } from '@app/registry';

/** Path segments that become etcd key segments: rejected before anything else runs. */
export class ParseNamePipe implements PipeTransform<unknown, string> {
  constructor(private readonly field: string) {}

  transform(value: unknown): string {
    if (!isValidName(value)) throw new InvalidRequestError(`${this.field} must be ${NAME_RULE}`, this.field);
    return value;
  }
}

/** A registration body is 2 levels deep (body, metadata); deeper JSON is refused before any recursion. */
const MAX_BODY_DEPTH = 8;

/**
 * Checks class-validator cannot make: a deeply nested body overflows the stack of the recursive
 * ValidationPipe/class-transformer (a 500 from a 16 KiB request), and keys that name inherited
 * Object members (`valueOf`, `constructor`, `toString` in metadata) or `prototype` are deleted by the
 * ValidationPipe or skipped by class-transformer, so they would be dropped silently instead of
 * refused like any other unknown field.
 */
function bodyShapeError(body: unknown): InvalidRequestError | undefined {
  const pending: Array<{ value: unknown; path: string; depth: number }> = [{ value: body, path: '', depth: 0 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value, path, depth } = next;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_BODY_DEPTH) return new InvalidRequestError(`body is nested deeper than ${MAX_BODY_DEPTH} levels`, path);
    for (const [key, child] of Object.entries(value)) {
      const childPath = path ? `${path}.${key}` : key;
      if (!Array.isArray(value) && (key in Object.prototype || key === 'prototype')) return new InvalidRequestError(`property ${childPath} should not exist`, childPath);
      pending.push({ value: child, path: childPath, depth: depth + 1 });
    }
  }
  return undefined;
}

class BodyValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const shapeError = metadata.type === 'body' ? bodyShapeError(value) : undefined;
    if (shapeError) throw shapeError;
    return super.transform(value, metadata);
  }
}

/** Body validation: unknown fields are errors (a typo must not be silently dropped). */
export function bodyValidationPipe(): ValidationPipe {
  return new BodyValidationPipe({
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
