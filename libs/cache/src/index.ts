export * from './revisioned-map';
export * from './refresh-backoff';
export * from './instance-filter';
export * from './shared-store';
export * from './redis-shared-store';
export * from './registry-cache';
export * from './change-waiters';
