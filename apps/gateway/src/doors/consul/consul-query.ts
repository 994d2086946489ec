import { InvalidRequestError } from '@app/registry';
import { MAX_WAIT_MS } from '../../resolve/resolve-query.pipe';
import { BlockingQuery } from '../../resolve/resolve-query.pipe';
import { parseGoDuration } from './consul-durations';

/** Consul holds a blocking query 5 minutes unless told otherwise, and at most 10 (longer waits are cut, not refused). */
export const CONSUL_DEFAULT_WAIT_MS = 300_000;

/** Consul's answer to a `dc` it does not know; it is a 500 there too. */
export class UnknownDatacenterError extends Error {
  constructor() {
    super('No path to datacenter');
  }
}

export interface ConsulReadQuery {
  blocking?: BlockingQuery;
  /** `?passing`: only instances whose checks all pass. */
  passing: boolean;
  /** `?tag=` (repeatable): instances carrying every one. */
  tags: string[];
}

/** Filters the gateway cannot evaluate: refused, so a client never gets a wider answer than it asked for. */
const UNSUPPORTED = ['filter', 'node-meta', 'peer', 'sg', 'merge-central-config'];

function single(value: unknown, name: string): string | undefined {
  if (Array.isArray(value)) throw new InvalidRequestError(`${name} may be given once`, name);
  return typeof value === 'string' ? value : undefined;
}

/**
 * The query of a Consul read. `stale`, `consistent`, `cached`, `near`, `ns`, `partition` and `token`
 * are accepted and change nothing: every answer comes from this replica's view of the registry.
 * Without `index` (or with `index=0`, as Consul) the read does not block.
 */
export function parseConsulQuery(query: Record<string, unknown>, datacenter: string): ConsulReadQuery {
  const dc = single(query.dc, 'dc');
  if (dc && dc !== datacenter) throw new UnknownDatacenterError();
  const unsupported = UNSUPPORTED.find((name) => query[name] !== undefined);
  if (unsupported) throw new InvalidRequestError(`the registry gateway does not support ?${unsupported}`, unsupported);
  const index = single(query.index, 'index');
  const wait = single(query.wait, 'wait');
  let waitMs = CONSUL_DEFAULT_WAIT_MS;
  if (wait !== undefined && wait !== '') {
    const parsed = parseGoDuration(wait);
    if (parsed === undefined) throw new InvalidRequestError(`Invalid wait time: "${wait}"`, 'wait');
    waitMs = Math.min(parsed, MAX_WAIT_MS);
  }
  let blocking: BlockingQuery | undefined;
  if (index !== undefined && index !== '') {
    if (!/^\d{1,20}$/.test(index) || Number(index) > Number.MAX_SAFE_INTEGER) throw new InvalidRequestError(`Invalid index: "${index}"`, 'index');
    if (Number(index) > 0) blocking = { index: Number(index), waitMs };
  }
  const passingValue = single(query.passing, 'passing');
  const passing = passingValue !== undefined && passingValue !== 'false' && passingValue !== '0';
  const tag = query.tag;
  const tags = tag === undefined ? [] : (Array.isArray(tag) ? tag : [tag]).filter((t): t is string => typeof t === 'string');
  return { blocking, passing, tags };
}

/**
 * `X-Consul-Index` of an answer: the view's index, at least 1 (clients treat 0 as an error). When a
 * query ran out its wait without a change, the client's own index is returned if this replica has
 * seen that revision (`seenRevision`: its watch's, or the answer's if a fresh read is ahead): the
 * content is then what the client already has, and its index must not go back (another replica may
 * have labelled the same content with a later read revision). An index beyond anything this replica
 * has seen (another registry, a lagging watch) is not echoed: the client gets the real one and
 * starts over, as Consul clients do when the index goes backwards.
 */
export function consulIndex(viewIndex: string, seenRevision: number, query: BlockingQuery | undefined): string {
  const index = Math.max(1, Number(viewIndex));
  if (query && query.index > index && query.index <= seenRevision) return String(query.index);
  return String(index);
}
