import { Logger } from '@nestjs/common';
import { LoadShedder } from '@app/concurrency';
import { ConnectionPool, InstanceRegistrar, LeaseEngine, LeaseTable, RegistryStore } from '@app/etcd';
import { KeyLayout } from '@app/registry';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';

/**
 * The composition root of the etcd side: one pool, the lease engine (lease table here, keepalive
 * streams and renewal scheduler in its worker thread) and the registrar, wired to metrics. Owns their
 * lifetime; `close()` never revokes a lease, so a rolling restart deregisters nobody.
 */
export class RegistryRuntime {
  readonly pool: ConnectionPool;
  readonly store: RegistryStore;
  readonly engine: LeaseEngine;
  readonly leases: LeaseTable;
  readonly registrar: InstanceRegistrar;
  readonly shedder: LoadShedder;
  private metricsTimer: NodeJS.Timeout | undefined;
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
    this.engine = new LeaseEngine(
      {
        connections: this.pool.connections,
        endpointsPerConnection: [...this.pool.endpointsPerConnection],
        tls: config.etcdTls,
        requestTimeoutMs: config.ETCD_REQUEST_TIMEOUT_MS,
        tickMs: config.RENEW_INTERVAL_MS,
      },
      {
        leaseLost: (lease) => this.registrar.regrant(lease),
        silentInstanceDropped: () => metrics.expirations.inc(),
        log: (level, message) => (level === 'error' ? this.logger.error(message) : level === 'warn' ? this.logger.warn(message) : this.logger.log(message)),
      },
    );
    this.leases = this.engine.table;
    this.shedder = new LoadShedder({
      maxEventLoopDelayMs: config.ADMISSION_MAX_EVENT_LOOP_DELAY_MS,
      renewalLagMs: () => this.engine.snapshot().oldestDueMs,
      maxRenewalLagMs: config.RENEWAL_LAG_MAX_MS,
    });
    this.registrar = new InstanceRegistrar(
      this.store,
      this.leases,
      {
        writeConcurrency: config.WRITE_CONCURRENCY,
        writeQueueCapacity: config.WRITE_QUEUE_CAPACITY,
        regrantsPerSecond: config.REGRANTS_PER_SECOND,
        shedRegistrations: () => this.shedder.shouldShed(),
      },
      {
        registered: (created) => metrics.registrations.inc({ kind: created ? 'created' : 'replaced' }),
        shed: (reason) => metrics.admissionRejections.inc({ reason }),
        deregistered: () => metrics.deregistrations.inc(),
        regranted: (result) => metrics.regrants.inc({ result }),
        heartbeat: (result) => metrics.heartbeats.inc({ result }),
        error: (message, err) => this.logger.warn(`${message}: ${(err as Error).message}`),
      },
    );
    metrics.observeLeaseEngine(() => this.engine.snapshot());
    metrics.observeEventLoopDelay(() => this.shedder.eventLoopDelayMs());
  }

  /**
   * Authenticates the pool and starts the lease engine. etcd being down is not fatal (the gateway serves
   * what it can and keeps retrying); wrong credentials are, since they will never heal by themselves.
   */
  async start(): Promise<void> {
    // The worker loads while the pool authenticates.
    const engineStarted = this.engine.start();
    try {
      await this.pool.connect();
    } catch (err) {
      const message = (err as Error).message;
      if (/authentication failed|invalid user ID or password|user name not found/i.test(message)) {
        throw new Error(`etcd rejected the gateway's credentials (ETCD_USERNAME/ETCD_PASSWORD): ${message}`, { cause: err });
      }
      this.logger.warn(`etcd not reachable at start (${message}); continuing and retrying in the background`);
    }
    await engineStarted;
    this.shedder.start();
    this.metricsTimer = setInterval(() => this.updateGauges(), 1_000);
    this.metricsTimer.unref();
  }

  async close(): Promise<void> {
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    this.shedder.stop();
    await this.engine.close();
    this.pool.close();
  }

  private updateGauges(): void {
    this.metrics.instances.set(this.leases.size);
    this.metrics.etcdConnections.set(this.pool.readyCount());
    this.metrics.writeQueueDepth.set(this.registrar.writeQueueDepth);
  }
}
