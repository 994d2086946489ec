import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FastifyInstance } from 'fastify';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * The replica's part in a graceful shutdown. Nest runs the sequence on SIGTERM/SIGINT (bootstrap.ts):
 * readiness turns 503 (terminus), the HTTP server stops accepting and closes idle connections,
 * in-flight requests finish, then the keepalive streams, etcd and Redis connections are closed.
 * Leases are never revoked: the instances stay registered, and another replica renews them on their
 * next heartbeat, so a rolling restart deregisters nobody.
 *
 * Two gaps are closed here:
 * - A keep-alive connection that was busy when the server closed would stay open after its response
 *   until the client hangs up (Fastify's keep-alive timeout is 72 s): while draining, every response
 *   says `Connection: close`.
 * - If the sequence still hangs (a socket that never closes), the process exits with code 1 after
 *   SHUTDOWN_GRACE_MS, before an orchestrator's SIGKILL (Kubernetes: 30 s) would cut the logs short.
 *   0 disables the limit. An in-process `app.close()` (tests) never arms it.
 */
@Injectable()
export class GracefulShutdown implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Shutdown');
  private draining = false;
  private armed = false;
  private readonly arm = (signal: NodeJS.Signals): void => {
    this.draining = true;
    if (this.armed) return;
    this.armed = true;
    const graceMs = this.config.SHUTDOWN_GRACE_MS;
    this.logger.log(`${signal}: draining (in-flight requests finish; leases are kept)${graceMs ? `, at most ${graceMs} ms` : ''}`);
    if (!graceMs) return;
    setTimeout(() => {
      this.logger.error(`shutdown did not finish within SHUTDOWN_GRACE_MS=${graceMs}; exiting now`);
      process.exit(1);
    }, graceMs).unref();
  };

  constructor(@Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig, adapterHost: HttpAdapterHost) {
    const fastify = adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    fastify?.addHook('onSend', (_request, reply, payload, done) => {
      if (this.draining) void reply.header('connection', 'close');
      done(null, payload);
    });
  }

  onApplicationBootstrap(): void {
    for (const signal of SIGNALS) process.on(signal, this.arm);
  }

  beforeApplicationShutdown(): void {
    this.draining = true;
  }

  onApplicationShutdown(): void {
    // The timer, once armed, stays: hooks of other modules may still be running after this one.
    for (const signal of SIGNALS) process.removeListener(signal, this.arm);
  }
}
