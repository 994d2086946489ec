import { EtcdConnection, EtcdConnectionOptions } from './etcd-connection';

export interface ConnectionPoolOptions extends EtcdConnectionOptions {
  /** Authenticated connections; each costs etcd exactly one Authenticate per token lifetime. */
  size: number;
}

/**
 * A fixed set of authenticated connections. Unary calls rotate over them; each one also carries one
 * LeaseKeepAlive stream (see KeepAliveStreams). The pool never grows with load: etcd's auth cost is
 * bounded by `size`, whatever the number of pods or clients.
 */
export class ConnectionPool {
  readonly connections: readonly EtcdConnection[];
  /** The member preference order of each connection (the lease engine's worker mirrors it). */
  readonly endpointsPerConnection: readonly string[][];
  private readonly rotation: ReadyRotation;

  constructor(options: ConnectionPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new Error(`pool size must be a positive integer: ${options.size}`);
    // Connection i starts at member i, so the pool spreads over the cluster.
    this.endpointsPerConnection = Array.from({ length: options.size }, (_, i) => rotate(options.endpoints, i));
    this.connections = this.endpointsPerConnection.map((endpoints) => new EtcdConnection({ ...options, endpoints }));
    this.rotation = new ReadyRotation(this.connections);
  }

  /** Authenticates every connection; rejects with the first failure (wrong password, etcd down). */
  async connect(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.connect()));
  }

  /** The next connection for a unary call, preferring ones whose channel is up. */
  pick(): EtcdConnection {
    return this.rotation.pick();
  }

  /** Why authentication is failing on some connection right now (e.g. the password changed), if it is. */
  authError(): string | undefined {
    return this.connections.find((c) => c.authError !== undefined)?.authError;
  }

  /** Connections whose channel is up; asks idle ones to reconnect (readiness and metrics call it every few seconds). */
  readyCount(): number {
    return this.connections.filter((c) => c.isReady(true)).length;
  }

  /** The latest successful unary call over all connections, epoch ms; 0 = none yet. */
  lastSuccessAt(): number {
    return Math.max(0, ...this.connections.map((c) => c.lastSuccessAt));
  }

  close(): void {
    for (const connection of this.connections) connection.close();
  }
}

/**
 * Round-robin over connections, preferring ones whose channel is up (the pool's unary calls, and the
 * lease-grant worker's channels, which mirror the pool).
 */
export class ReadyRotation {
  private next = 0;

  constructor(private readonly connections: readonly EtcdConnection[]) {}

  pick(): EtcdConnection {
    for (let i = 0; i < this.connections.length; i++) {
      const candidate = this.connections[this.next++ % this.connections.length];
      if (candidate.isReady()) return candidate;
    }
    return this.connections[this.next++ % this.connections.length];
  }
}

/** `items` starting at index `by` (wrapping): connection i prefers member i. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
