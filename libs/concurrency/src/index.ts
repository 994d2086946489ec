export * from './singleflight';
export * from './bounded-queue';
export * from './token-bucket';
export * from './load-shedder';
export * from './backoff';
export * from './periodic-pass';
export * from './reopen-timer';
