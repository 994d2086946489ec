export * from './auth-session';
export * from './etcd-connection';
export * from './connection-pool';
export * from './lease-multiplexer';
export * from './keepalive-streams';
export * from './registry-store';
export * from './instance-registrar';
export * from './registry-watch';
