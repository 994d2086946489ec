export * from './instance-filter';
export * from './registry-read-model';
export * from './change-waiters';
