import { Logger } from '@nestjs/common';
import { ConnectionPool, InstanceRegistrar, KeepAliveStreams, LeaseMultiplexer, RegistryStore } from '@app/etcd';
import { KeyLayout } from '@app/registry';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';

/**
 * The composition root of the etcd side: one pool, its keepalive streams, the lease multiplexer and
 * the registrar, wired to metrics. Owns their lifetime; `close()` never revokes a lease, so a
 * rolling restart deregisters nobody.
 */
export class RegistryRuntime {
  readonly pool: ConnectionPool;
  readonly store: RegistryStore;
  readonly leases: LeaseMultiplexer;
  readonly streams: KeepAliveStreams;
  readonly registrar: InstanceRegistrar;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly logger = new Logger('RegistryRuntime');

  constructor(
    private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {
    this.pool = new ConnectionPool({
      size: config.ETCD_POOL_SIZE,
      endpoints: config.ETCD_ENDPOINTS,
      credentials: config.ETCD_USERNAME ? { username: config.ETCD_USERNAME, password: config.ETCD_PASSWORD! } : undefined,
      tls: config.etcdTls,
      requestTimeoutMs: config.ETCD_REQUEST_TIMEOUT_MS,
      observer: {
        authenticateCalled: (result) => metrics.authRequests.inc({ result }),
        requestCompleted: (method, result) => metrics.etcdRequests.inc({ method, result }),
      },
    });
    this.store = new RegistryStore(this.pool, new KeyLayout(config.ETCD_PREFIX));
    this.streams = new KeepAliveStreams(this.pool.connections, {
      renewalAnswered: (leaseId, ttl) => this.leases.onRenewalAnswer(leaseId, ttl, Date.now()),
      streamReset: (index, err) => {
        this.leases.onStreamReset();
        if (err) this.logger.warn(`keepalive stream ${index} broke (${err.message}); reopening with backoff`);
      },
      streamsChanged: () => metrics.keepaliveStreams.set(this.streams.liveCount()),
    });
    this.leases = new LeaseMultiplexer(this.streams, {
      leaseLost: (lease) => this.registrar.regrant(lease),
      renewalsSent: (count) => metrics.leaseRenewals.inc(count),
      silentInstanceDropped: () => metrics.expirations.inc(),
    });
    this.registrar = new InstanceRegistrar(
      this.store,
      this.leases,
      {
        writeConcurrency: config.WRITE_CONCURRENCY,
        writeQueueCapacity: config.WRITE_QUEUE_CAPACITY,
        regrantsPerSecond: config.REGRANTS_PER_SECOND,
      },
      {
        registered: (created) => metrics.registrations.inc({ kind: created ? 'created' : 'replaced' }),
        deregistered: () => metrics.deregistrations.inc(),
        regranted: (result) => metrics.regrants.inc({ result }),
        heartbeat: (result) => metrics.heartbeats.inc({ result }),
        error: (message, err) => this.logger.warn(`${message}: ${(err as Error).message}`),
      },
    );
  }

  /**
   * Authenticates the pool and opens the streams. etcd being down is not fatal (the gateway serves
   * what it can and keeps retrying); wrong credentials are, since they will never heal by themselves.
   */
  async start(): Promise<void> {
    try {
      await this.pool.connect();
    } catch (err) {
      const message = (err as Error).message;
      if (/authentication failed|invalid user ID or password|user name not found/i.test(message)) {
        throw new Error(`etcd rejected the gateway's credentials (ETCD_USERNAME/ETCD_PASSWORD): ${message}`, { cause: err });
      }
      this.logger.warn(`etcd not reachable at start (${message}); continuing and retrying in the background`);
    }
    this.streams.start();
    this.renewTimer = setInterval(() => this.tick(), this.config.RENEW_INTERVAL_MS);
    this.renewTimer.unref();
  }

  close(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.streams.close();
    this.pool.close();
  }

  private tick(): void {
    this.leases.renewDueLeases(Date.now());
    this.metrics.instances.set(this.leases.size);
    this.metrics.etcdConnections.set(this.pool.readyCount());
    this.metrics.keepaliveStreams.set(this.streams.liveCount());
    this.metrics.writeQueueDepth.set(this.registrar.writeQueueDepth);
  }
}
