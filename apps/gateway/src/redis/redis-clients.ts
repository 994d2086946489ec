import type { LeaseEngineStats } from '@app/etcd';
import { RedisConnection } from './redis.provider';

/** One Redis connection the process holds: its name (the `client` label), whether it takes commands, and its state. */
export interface RedisClientState {
  client: string;
  up: boolean;
  state: string;
}

/**
 * Every Redis connection of the process, for readiness and `registry_redis_up{client}`: the HTTP
 * thread's, and the lease engine worker's ledger (reported through the worker's shared stats; absent
 * with RENEWAL_DEDUP=false). A connection added elsewhere must be listed here.
 */
export function redisClientStates(http: RedisConnection, renewals: Pick<LeaseEngineStats, 'ledgerRedis'>): RedisClientState[] {
  const states: RedisClientState[] = [{ client: RedisConnection.CLIENT, up: http.isReady(), state: http.client.status }];
  if (renewals.ledgerRedis !== 'off') states.push({ client: 'lease-engine', up: renewals.ledgerRedis === 'up', state: renewals.ledgerRedis === 'up' ? 'ready' : 'not connected' });
  return states;
}
