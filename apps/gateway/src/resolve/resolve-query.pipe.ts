import { PipeTransform } from '@nestjs/common';
import { InstanceFilter } from '@app/cache';
import { INSTANCE_STATUSES, InstanceStatus, InvalidRequestError, NAME_PATTERN, REGISTRATION_LIMITS as L } from '@app/registry';

const FILTERS = ['tag', 'zone', 'meta', 'status'];
/** Read by ParseBlockingQueryPipe on the same query object. */
const BLOCKING = ['index', 'wait'];
const PARAMETERS = [...FILTERS, ...BLOCKING];

/**
 * Query of `GET /v1/services/{service}` -> InstanceFilter. Hand-written rather than a class-validator
 * DTO because it runs on every resolve, the hot read path. Fastify parses a repeated parameter into
 * an array: `?tag=a&tag=b`. Unknown parameters are errors, so a typo never silently widens a filter.
 */
export class ParseResolveQueryPipe implements PipeTransform<Record<string, unknown> | undefined, InstanceFilter> {
  transform(query: Record<string, unknown> | undefined): InstanceFilter {
    return parseResolveQuery(query);
  }
}

/** ParseResolveQueryPipe's check, for the resolve route served outside Nest (http/fast-routes). */
export function parseResolveQuery(query: Record<string, unknown> | undefined): InstanceFilter {
  const filter: InstanceFilter = {};
  if (!query) return filter;
  for (const name of Object.keys(query)) {
    if (!PARAMETERS.includes(name)) throw new InvalidRequestError(`unknown query parameter "${name}"; known are tag, zone, meta, status, index and wait`, name);
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

/** `?index=<revision>&wait=<duration>`: hold the answer until the content's index passes `index`, at most `waitMs`. */
export interface BlockingQuery {
  index: number;
  waitMs: number;
}

/** Consul's defaults: a held query ends after 60 s unless told otherwise, and never after more than 10 min. */
export const DEFAULT_WAIT_MS = 60_000;
export const MAX_WAIT_MS = 600_000;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000 };

/**
 * `index` and `wait` of both resolve routes -> BlockingQuery, or undefined for an ordinary lookup.
 * Without `index` a `wait` is ignored, as in Consul: there is nothing to wait past. Other
 * parameters are left to the route (ParseResolveQueryPipe checks them on the service route).
 */
export class ParseBlockingQueryPipe implements PipeTransform<Record<string, unknown> | undefined, BlockingQuery | undefined> {
  transform(query: Record<string, unknown> | undefined): BlockingQuery | undefined {
    return parseBlockingQuery(query);
  }
}

/** ParseBlockingQueryPipe's check, for the resolve route served outside Nest (http/fast-routes). */
export function parseBlockingQuery(query: Record<string, unknown> | undefined): BlockingQuery | undefined {
  const index = single(query?.index, 'index');
  const wait = single(query?.wait, 'wait');
  let waitMs = DEFAULT_WAIT_MS;
  if (wait !== undefined) {
    const match = /^(\d{1,7})(ms|s|m)$/.exec(wait);
    waitMs = match ? Number(match[1]) * UNIT_MS[match[2]] : NaN;
    if (!(waitMs <= MAX_WAIT_MS)) throw new InvalidRequestError('wait must be a duration like 500ms, 30s or 5m, at most 10m', 'wait');
  }
  if (index === undefined) return undefined;
  // Revisions are etcd int64s, but far below 2^53 in practice; a bigger one is a client bug.
  if (!/^\d{1,16}$/.test(index) || Number(index) > Number.MAX_SAFE_INTEGER) {
    throw new InvalidRequestError('index must be a revision: decimal digits, as X-Registry-Index returned it', 'index');
  }
  return { index: Number(index), waitMs };
}
