/** One instance as `GET /v1/services/{service}` answers it. */
export interface Instance {
  id: string;
  address: string;
  port: number;
  metadata: Record<string, string>;
  tags: string[];
  zone?: string;
  weight: number;
  status: 'UP' | 'DRAINING' | 'DOWN';
}

/** The filters of `GET /v1/services/{service}`; every given one must hold. */
export interface InstanceFilter {
  /** Instances carrying every one of these tags. */
  tags?: string[];
  zone?: string;
  /** Metadata pairs that must all match. */
  meta?: Record<string, string>;
  /** Default `UP` (the gateway's default); `all` for every status. */
  status?: 'UP' | 'DRAINING' | 'DOWN' | 'all';
}

/** The query string of a filter, in a stable order (it also keys the resolver's last answers). */
export function filterQuery(filter: InstanceFilter = {}): URLSearchParams {
  const query = new URLSearchParams();
  for (const tag of [...(filter.tags ?? [])].sort()) query.append('tag', tag);
  if (filter.zone !== undefined) query.set('zone', filter.zone);
  for (const [key, value] of Object.entries(filter.meta ?? {}).sort(([a], [b]) => a.localeCompare(b))) query.append('meta', `${key}=${value}`);
  if (filter.status !== undefined) query.set('status', filter.status);
  return query;
}
