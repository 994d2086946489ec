import { RedisConnection } from './redis.provider';

/** One Redis connection the process holds: its name (the `client` label), whether it takes commands, and its state. */
export interface RedisClientState {
  client: string;
  up: boolean;
  state: string;
}

/**
 * Every Redis connection of the process, for readiness and `registry_redis_up{client}`: the HTTP
 * thread's (heard-sets, caches). A connection added elsewhere must be listed here.
 */
export function redisClientStates(http: RedisConnection): RedisClientState[] {
  return [{ client: RedisConnection.CLIENT, up: http.isReady(), state: http.client.status }];
}
