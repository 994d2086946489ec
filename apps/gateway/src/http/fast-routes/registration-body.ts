import { INSTANCE_STATUSES, InstanceRegistration, InstanceStatus, isValidName, REGISTRATION_LIMITS as L } from '@app/registry';
import { isHostAddress, isStringMap } from '../register-instance.dto';
import { hasOnlyKeys, isPlainObject } from './plain-body';

const FIELDS = new Set(['address', 'port', 'ttl', 'metadata', 'tags', 'zone', 'weight', 'status']);

/**
 * The common case of a valid registration body, checked by hand: class-transformer + class-validator
 * cost about a third of a registration's HTTP-thread time (bench/results/registration-rate.md). Returns
 * the registration with the documented defaults, or undefined for anything that is not plainly valid;
 * the caller then runs the body through the validation pipe, which answers it exactly as for any other
 * route (or accepts it). So this check may refuse more than the pipe, never less: every body it accepts
 * the pipe accepts as well, with the same result (registration-body.spec.ts checks both).
 */
export function plainRegistration(body: unknown): InstanceRegistration | undefined {
  if (!isPlainObject(body) || !hasOnlyKeys(body, FIELDS)) return undefined;
  const b = body as Record<string, unknown>;
  if (!isHostAddress(b.address) || !isIntegerIn(b.port, L.port)) return undefined;
  if (b.ttl !== undefined && !isIntegerIn(b.ttl, L.ttlSeconds)) return undefined;
  if (b.weight !== undefined && !isIntegerIn(b.weight, L.weight)) return undefined;
  if (b.zone !== undefined && !isValidName(b.zone)) return undefined;
  if (b.status !== undefined && !INSTANCE_STATUSES.includes(b.status as InstanceStatus)) return undefined;
  if (b.metadata !== undefined && !plainMetadata(b.metadata)) return undefined;
  if (b.tags !== undefined && !plainTags(b.tags)) return undefined;
  return {
    address: b.address,
    port: b.port as number,
    ttl: (b.ttl as number | undefined) ?? L.ttlSeconds.default,
    metadata: (b.metadata as Record<string, string> | undefined) ?? {},
    tags: (b.tags as string[] | undefined) ?? [],
    zone: b.zone as string | undefined,
    weight: (b.weight as number | undefined) ?? L.weight.default,
    status: (b.status as InstanceStatus | undefined) ?? 'UP',
  };
}

function isIntegerIn(value: unknown, range: { min: number; max: number }): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= range.min && value <= range.max;
}

/** Keys naming Object members (`constructor`, `valueOf`) are refused by the pipe's shape check: left to it. */
function plainMetadata(value: unknown): boolean {
  if (!isPlainObject(value) || !isStringMap(value)) return false;
  for (const key of Object.keys(value)) if (key in Object.prototype || key === 'prototype') return false;
  return true;
}

function plainTags(value: unknown): boolean {
  if (!Array.isArray(value) || Object.getPrototypeOf(value) !== Array.prototype || value.length > L.tags.maxCount) return false;
  for (const tag of value as unknown[]) if (typeof tag !== 'string' || tag.length > L.tags.maxLength) return false;
  return true;
}
