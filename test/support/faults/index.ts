/** The fault harness: real etcd cluster, Redis and gateway replicas, a fleet driver, the test tree's HTTP client and poller. */
export { startFaultStack, FaultStack, EtcdCounterTracker } from './stack';
export type { RedisTopology } from './stack';
export type { FaultStackOptions } from './stack';
export { GatewayReplica } from './replica';
export { FleetDriver, summarize } from './fleet';
export { forEachLimited } from '../fleet';
export type { FleetOptions, FleetReport, Gap } from './fleet';
export { HttpClient, metricValue } from '../http';
export type { HttpAnswer } from '../http';
export { waitFor, sleep } from '../wait';
export { runScenario } from './scenario';
export { heardSetFailuresBefore, heardSetRecordsOn, redisClientsUp } from './heard-set-records';
export type { HeardSetRecords } from './heard-set-records';
export type { ScenarioResult } from './scenario';
