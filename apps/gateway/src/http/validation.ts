import { ArgumentMetadata, PipeTransform, ValidationError, ValidationPipe } from '@nestjs/common';
import { ValidateIf } from 'class-validator';
import { InvalidRequestError, isValidName, NAME_RULE } from '@app/registry';

/** Path segments that become etcd key segments: rejected before anything else runs. */
export class ParseNamePipe implements PipeTransform<unknown, string> {
  constructor(private readonly field: string) {}

  transform(value: unknown): string {
    if (!isValidName(value)) throw new InvalidRequestError(`${this.field} must be ${NAME_RULE}`, this.field);
    return value;
  }
}

/**
 * An optional body field: absent means "use the default", but `null` is validated like any other
 * value and so refused. class-validator's IsOptional() takes null for absent, which let
 * `"zone": null` be stored and then returned where the document promises a string.
 */
export function Optional(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined);
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
  // The pipe would turn a missing or null body into {} and report its first missing field instead.
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return new InvalidRequestError('the body must be a JSON object');
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
    if (metadata.type !== 'body') return super.transform(value, metadata);
    const shapeError = bodyShapeError(value);
    if (shapeError) throw shapeError;
    return super.transform(value, metadata);
  }
}

/**
 * class-validator lists a property's failed constraints in reverse decorator order, so `"port": "80"`
 * used to be answered with the range rule ("must not be greater than 65535"). A type rule that
 * fails is the one worth reporting.
 */
const TYPE_CONSTRAINTS = ['isDefined', 'isString', 'isInt', 'isArray', 'isObject', 'isIn'];

/** Body validation: unknown fields are errors (a typo must not be silently dropped). */
export function bodyValidationPipe(): ValidationPipe {
  return new BodyValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    // The value stays inside the factory: error messages never echo what was sent.
    validationError: { target: false, value: true },
    exceptionFactory: (errors: ValidationError[]) => {
      const first = firstLeaf(errors[0]);
      return new InvalidRequestError((first && messageFor(first)) ?? 'invalid body', first?.path);
    },
  });
}

function messageFor({ error, path }: { error: ValidationError; path: string }): string | undefined {
  const constraints = error.constraints ?? {};
  // A known field sent as null fails its type rule; say what is actually wrong with it (an
  // optional field is left out to get its default, never sent as null).
  if (error.value === null && !('whitelistValidation' in constraints)) return `${path} must not be null`;
  const typeRule = TYPE_CONSTRAINTS.find((name) => name in constraints);
  return typeRule ? constraints[typeRule] : Object.values(constraints)[0];
}

function firstLeaf(error: ValidationError | undefined, prefix = ''): { error: ValidationError; path: string } | undefined {
  if (!error) return undefined;
  const path = prefix ? `${prefix}.${error.property}` : error.property;
  if (error.constraints && Object.keys(error.constraints).length) return { error, path };
  return firstLeaf(error.children?.[0], path);
}
