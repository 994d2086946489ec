import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  castGrpcError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  ICallable,
  KVClient,
  LeaseClient,
  WatchClient,
} from 'etcd3';
import { AuthSession, retryOnStaleToken } from './auth-session';

type ServiceName = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth';
type ServiceClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
type ServiceConstructor = new (address: string, credentials: grpc.ChannelCredentials, options: object) => ServiceClient;

// Same loader options as etcd3 itself, so its typed clients (KVClient, LeaseClient, ...) see the
// message shapes they expect: snake_case fields, int64 as decimal strings.
const etcdserverpb = (
  grpc.loadPackageDefinition(
    loadSync(require.resolve('etcd3/proto/rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }),
  ) as unknown as { etcdserverpb: Record<ServiceName, ServiceConstructor> }
).etcdserverpb;

export interface EtcdCredentials {
  username: string;
  password: string;
}

export interface EtcdTlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Hooks for metrics; the connection never logs or exports credentials or tokens itself. */
export interface EtcdObserver {
  authenticateCalled?(result: 'ok' | 'error'): void;
  requestCompleted?(method: string, result: 'ok' | 'error'): void;
}

/** Where a connection gets its auth token (AuthSession, or tokens relayed from another thread). */
export interface TokenSource {
  /** The current token; authenticates (once, shared by concurrent callers) when there is none. */
  token(): Promise<string | undefined>;
  /** Drops `staleToken` if it is still the current one (a call was refused with it). */
  invalidate(staleToken: string): void;
}

export interface EtcdConnectionOptions {
  /** host:port of each member; this connection prefers them in the given order. */
  endpoints: string[];
  credentials?: EtcdCredentials;
  /**
   * Tokens from elsewhere instead of authenticating itself: the lease engine's worker uses the tokens
   * of the HTTP thread's pooled connections, so its own channels cost etcd no Authenticate.
   */
  tokens?: TokenSource;
  tls?: EtcdTlsOptions;
  /** Deadline of one unary call; a frozen etcd must not hold requests longer than this. */
  requestTimeoutMs: number;
  /** Interval of HTTP/2 pings while a call or stream is open; 10 s (tests shorten it). */
  keepaliveTimeMs?: number;
  observer?: EtcdObserver;
}

/**
 * One authenticated etcd connection: one HTTP/2 channel, one auth token, the etcd3 typed clients on
 * top. It implements etcd3's ICallable, so etcd3's own KVClient/LeaseClient/WatchClient run on it.
 */
export class EtcdConnection implements ICallable<EtcdConnection> {
  readonly kv: KVClient;
  readonly lease: LeaseClient;
  readonly watch: WatchClient;
  readonly callOptionsFactory = undefined;

  private readonly channel: grpc.Channel;
  private readonly services = new Map<ServiceName, ServiceClient>();
  private readonly auth: TokenSource | undefined;
  private closed = false;
  private lastOkAt = 0;
  private lastAuthError: string | undefined;

  constructor(private readonly options: EtcdConnectionOptions) {
    const creds = options.tls
      ? grpc.credentials.createSsl(options.tls.ca ?? null, options.tls.key ?? null, options.tls.cert ?? null)
      : grpc.credentials.createInsecure();
    this.channel = new grpc.Channel(channelTarget(options.endpoints), creds, {
      // Without a local pool grpc-js shares one TCP connection between identical channels, and
      // the pool would be N names for one connection.
      'grpc.use_local_subchannel_pool': 1,
      // Detects a frozen or partitioned member on long-lived streams; etcd's default minimum ping
      // interval is 5 s, faster pings get the connection closed with "too_many_pings".
      'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // Pings only while a call or stream is open: etcd does not permit pings on a connection without
      // streams, and closed idle channels (the grant worker's, the pool's between writes) with GOAWAY
      // "too_many_pings" after three of them, which grpc-js printed to stderr as "excess pings". An idle
      // channel's next unary call has its deadline to find a dead member.
      'grpc.keepalive_permit_without_calls': 0,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    });
    for (const name of ['KV', 'Watch', 'Lease', 'Auth'] as const) {
      this.services.set(name, new etcdserverpb[name](channelTarget(options.endpoints), creds, { channelOverride: this.channel }));
    }
    this.auth = options.tokens ?? (options.credentials ? new AuthSession(() => this.authenticate(options.credentials!)) : undefined);
    this.kv = new KVClient(this);
    this.lease = new LeaseClient(this);
    this.watch = new WatchClient(this);
  }

  /** Authenticates now (no-op without credentials); rejects with the etcd error, e.g. wrong password. */
  async connect(): Promise<void> {
    if (this.auth) await this.auth.token();
  }

  /**
   * Whether the channel is connected. With `reconnectIdle`, a channel that went IDLE (grpc-js does not
   * reconnect a dropped channel until a call needs it) is asked to connect again: lookups no longer
   * use the pool, so after an etcd outage a connection may see no call for a long time, and the next
   * write should not pay the reconnect, nor readiness report it as down.
   */
  isReady(reconnectIdle = false): boolean {
    return !this.closed && this.channel.getConnectivityState(reconnectIdle) === grpc.connectivityState.READY;
  }

  /**
   * Why the last Authenticate failed (etcd's words, e.g. "authentication failed, invalid user ID or
   * password"; never a credential), until one succeeds again.
   */
  get authError(): string | undefined {
    return this.lastAuthError;
  }

  /** When a unary call (or Authenticate) last succeeded on this connection, epoch ms; 0 = never. */
  get lastSuccessAt(): number {
    return this.lastOkAt;
  }

  async exec<T>(service: ServiceName, method: string, params: unknown, options?: grpc.CallOptions): Promise<T> {
    const client = this.client(service);
    return retryOnStaleToken(
      this.auth,
      async (token) => {
        try {
          const result = await unaryCall<T>(client, method, params, tokenMetadata(token), {
            deadline: Date.now() + this.options.requestTimeoutMs,
            ...options,
          });
          this.lastOkAt = Date.now();
          return result;
        } catch (raw) {
          throw castGrpcError(raw as Error);
        }
      },
      (result) => this.options.observer?.requestCompleted?.(method, result),
    );
  }

  async withConnection<R>(
    service: ServiceName,
    fn: (args: { resource: EtcdConnection; client: grpc.Client; metadata: grpc.Metadata }) => Promise<R> | R,
  ): Promise<R> {
    const token = this.auth ? await this.auth.token() : undefined;
    return fn({ resource: this, client: this.client(service), metadata: tokenMetadata(token) });
  }

  markFailed(): void {
    // Streams report their own errors to their owners (keepalive streams, watch); nothing to do.
  }

  /** The token calls use right now (undefined without auth); authenticates if there is none yet. */
  async currentToken(): Promise<string | undefined> {
    return this.auth ? this.auth.token() : undefined;
  }

  /**
   * A stream opened with `staleToken` was refused ("invalid auth token", e.g. after an etcd restart).
   * Only that token is dropped: if other calls already re-authenticated, their token stays, so the
   * restart still costs one Authenticate per connection.
   */
  invalidateToken(staleToken: string | undefined): void {
    if (staleToken) this.auth?.invalidate(staleToken);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const client of this.services.values()) client.close();
    this.channel.close();
  }

  private client(service: ServiceName): ServiceClient {
    const client = this.services.get(service);
    if (!client) throw new Error(`etcd service ${service} is not used by the gateway`);
    return client;
  }

  private async authenticate(credentials: EtcdCredentials): Promise<string> {
    const auth = this.client('Auth');
    const deadline = Date.now() + this.options.requestTimeoutMs;
    // Authenticate only over a connected channel: a call that never reaches etcd is not counted by
    // etcd either, so our registry_etcd_auth_requests_total stays equal to etcd's own count.
    await new Promise<void>((resolve, reject) =>
      auth.waitForReady(deadline, (err) => (err ? reject(new GRPCUnavailableError(`etcd unreachable: ${err.message}`)) : resolve())),
    );
    try {
      const res = await unaryCall<{ token: string }>(auth, 'authenticate', { name: credentials.username, password: credentials.password }, new grpc.Metadata(), {
        deadline,
      });
      this.lastOkAt = Date.now();
      this.lastAuthError = undefined;
      this.options.observer?.authenticateCalled?.('ok');
      return res.token;
    } catch (raw) {
      const err = castGrpcError(raw as Error);
      // Unreachable is not an authentication failure: readiness reports that through the channels.
      if (!(err instanceof GRPCUnavailableError) && !(err instanceof GRPCDeadlineExceededError)) this.lastAuthError = err.message.replace(/^\d+ [A-Z_]+: /, '');
      // After authError is set: an observer may read it.
      this.options.observer?.authenticateCalled?.('error');
      throw err;
    }
  }
}

function tokenMetadata(token: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('token', token);
  return metadata;
}

function unaryCall<T>(client: ServiceClient, method: string, params: unknown, metadata: grpc.Metadata, options: grpc.CallOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    client[method](params, metadata, options, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/**
 * All-IP endpoint lists become one `ipv4:`/`ipv6:` target, so grpc's pick_first fails over between
 * members by itself. A host name is resolved by DNS and pins this connection to that name.
 */
export function channelTarget(endpoints: string[]): string {
  const ipv4 = /^\d{1,3}(\.\d{1,3}){3}:\d+$/;
  if (endpoints.every((e) => ipv4.test(e))) return `ipv4:${endpoints.join(',')}`;
  return `dns:${endpoints[0]}`;
}
