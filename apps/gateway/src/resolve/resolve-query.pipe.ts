import { PipeTransform } from '@nestjs/common';
import { InstanceFilter } from '@app/cache';
import { INSTANCE_STATUSES, InstanceStatus, InvalidRequestError, NAME_PATTERN, REGISTRATION_LIMITS as L } from '@app/registry';

const PARAMETERS = ['tag', 'zone', 'meta', 'status'];

/**
 * Query of `GET /v1/services/{service}` -> InstanceFilter. Hand-written rather than a class-validator
 * DTO because it runs on every resolve, the hot read path. Fastify parses a repeated parameter into
 * an array: `?tag=a&tag=b`. Unknown parameters are errors, so a typo never silently widens a filter.
 */
export class ParseResolveQueryPipe implements PipeTransform<Record<string, unknown> | undefined, InstanceFilter> {
  transform(query: Record<string, unknown> | undefined): InstanceFilter {
    const filter: InstanceFilter = {};
    if (!query) return filter;
    for (const name of Object.keys(query)) {
      if (!PARAMETERS.includes(name)) throw new InvalidRequestError(`unknown query parameter "${name}"; filters are tag, zone, meta and status`, name);
    }
    const tags = list(query.tag, 'tag');
    if (tags.length) {
      if (tags.some((tag) => !tag || tag.length > L.tags.maxLength)) throw new InvalidRequestError(`tag must be 1-${L.tags.maxLength} characters`, 'tag');
      filter.tags = tags;
    }
    const zone = single(query.zone, 'zone');
    if (zone !== undefined) {
      if (!NAME_PATTERN.test(zone)) throw new InvalidRequestError('zone must be 1-128 characters of [A-Za-z0-9._-]', 'zone');
      filter.zone = zone;
    }
    const meta = list(query.meta, 'meta');
    if (meta.length) {
      filter.metadata = meta.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new InvalidRequestError('meta must be key=value', 'meta');
        return [pair.slice(0, eq), pair.slice(eq + 1)] as const;
      });
    }
    const status = single(query.status, 'status')?.toUpperCase();
    if (status !== undefined) {
      if (status !== 'ALL' && !(INSTANCE_STATUSES as readonly string[]).includes(status)) {
        throw new InvalidRequestError(`status must be all or one of ${INSTANCE_STATUSES.join(', ')}`, 'status');
      }
      filter.status = status === 'ALL' ? 'all' : (status as InstanceStatus);
    }
    return filter;
  }
}

function list(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  if (!values.every((v): v is string => typeof v === 'string')) throw new InvalidRequestError(`${name} must be a string`, name);
  return values;
}

function single(value: unknown, name: string): string | undefined {
  if (Array.isArray(value)) throw new InvalidRequestError(`${name} may be given once`, name);
  if (value !== undefined && typeof value !== 'string') throw new InvalidRequestError(`${name} must be a string`, name);
  return value;
}
