/**
 * @app/stack: real etcd (auth enabled) and Redis processes on loopback for integration tests, benches
 * and the dev stack. Every process started here dies with the Node process that started it (exit
 * hooks plus a per-child watchdog, see procs.ts), even inside jest test files or after a SIGKILL.
 */
export { startEtcd, startEtcdCluster, EtcdServer, credentialsFile, GATEWAY_ROLE } from './etcd';
export type { EtcdOptions, EtcdPorts, EtcdctlIdentity, EtcdctlResult } from './etcd';
export { startRedis, RedisServer, redisPing } from './redis';
export type { RedisOptions } from './redis';
export { startRedisSentinelGroup, startRedisCluster, RedisSentinelGroup, RedisClusterGroup, SentinelServer, redisCli } from './redis-topologies';
export type { SentinelGroupOptions, ClusterOptions as RedisClusterOptions, ClusterNodeInfo } from './redis-topologies';
export {
  parsePrometheusText,
  sumSamples,
  etcdCountersFromSamples,
  fetchEtcdCounters,
  diffCounters,
} from './metrics';
export type { EtcdCounters, PromSample } from './metrics';
export { freePort, freePorts, isPortFree, trackChild, REPO_ROOT, LOCAL_DIR } from './procs';
