/**
 * fleet-sim: the load generator of the benchmark (`npm run bench` drives it, one process per
 * scenario). Runs one scenario, prints a summary table, optionally writes the result as JSON.
 */
import * as fs from 'node:fs';
import { runBurst } from './burst';
import { runCannon } from './cannon';
import { EtcdCounterProbe, EtcdTarget } from './etcd-probe';
import { runFleetScenario } from './fleet-scenario';
import { FleetDriver, Resolver } from './fleets/fleet-driver';
import { FreshClientPerBeatDriver } from './fleets/fresh-client-driver';
import { GatewayDriver, Spread } from './fleets/gateway-driver';
import { OwnClientPerPodDriver } from './fleets/own-client-driver';
import { KeepAliveHttpClient } from './http-client';
import { CliArgs, USAGE, UsageError, list, num, parseCli, str } from './options';
import { ProcessSampler, parsePidList } from './process-sampler';
import { FleetParams, SimResult } from './results';
import { GatewayProbe } from './gateway-probe';
import { runRawRegister } from './raw-register';
import { runScale } from './scale-scenario';
import { renderSummary } from './summary';

function etcdTargetFromEnv(): EtcdTarget {
  const endpoints = list(process.env.ETCD_ENDPOINTS);
  if (!endpoints.length) throw new UsageError('ETCD_ENDPOINTS is not set (host:port of etcd)');
  return { endpoints, username: process.env.ETCD_USERNAME, password: process.env.ETCD_PASSWORD };
}

/**
 * Whether the gateway answers `GET /v1/services/{service}` (it may predate the resolve endpoint):
 * undefined when it does, else the reason to skip resolve scenarios.
 */
export async function resolveUnavailable(url: string, service: string): Promise<string | undefined> {
  const client = new KeepAliveHttpClient(url, 5000, 1);
  try {
    const res = await client.request('GET', `/v1/services/${service}`, undefined, true);
    if (res.status === 200 && /"instances"\s*:/.test(res.body)) return undefined;
    return `GET /v1/services/{service} answered ${res.status} (resolve endpoint not available in this gateway build)`;
  } catch (err) {
    return `GET /v1/services/{service} failed: ${(err as Error).message}`;
  } finally {
    client.close();
  }
}

async function runFleet(cli: CliArgs, probe: EtcdCounterProbe | undefined, sampler: ProcessSampler): Promise<SimResult> {
  const v = cli.values;
  const duration = num(v, 'duration', 10);
  const pods = num(v, 'pods', 100, 1);
  const gateways = list(str(v, 'gateway'));
  const params: FleetParams = {
    pods,
    services: num(v, 'services', 10, 1),
    intervalSeconds: num(v, 'interval', 1, 0.05),
    durationSeconds: duration,
    ttlSeconds: num(v, 'ttl', 5, 1),
    callTimeoutSeconds: num(v, 'call-timeout', 5, 0.1),
    registerConcurrency: num(v, 'register-concurrency', cli.mode === 'after' ? pods : 64, 1),
    silentFraction: num(v, 'silent', 0),
    silentAfterSeconds: num(v, 'silent-after', duration / 3),
    resolvers: cli.mode === 'gateway' ? num(v, 'resolvers', 0) : 0,
    resolveIntervalSeconds: num(v, 'resolve-interval', 0.05),
    gateways,
    spread: str(v, 'spread', 'round-robin')!,
    prefix: str(v, 'prefix', process.env.ETCD_PREFIX ?? '/registry/')!,
  };
  if (params.silentFraction > 1) throw new UsageError('--silent is a fraction between 0 and 1');
  if (!['round-robin', 'sticky'].includes(params.spread)) throw new UsageError('--spread must be round-robin or sticky');
  const callTimeoutMs = params.callTimeoutSeconds * 1000;
  const registerTimeoutMs = num(v, 'register-timeout', 120, 0.1) * 1000;
  const hasEtcd = !!process.env.ETCD_ENDPOINTS;

  let driver: FleetDriver;
  let resolver: Resolver | undefined;
  let resolverSkipped: string | undefined;
  if (cli.mode === 'gateway') {
    if (!gateways.length) throw new UsageError('gateway mode needs --gateway URL[,URL...]');
    const gw = new GatewayDriver(gateways, params.ttlSeconds, callTimeoutMs, params.spread as Spread);
    driver = gw;
    if (params.resolvers > 0) {
      resolverSkipped = await resolveUnavailable(gateways[0], 'fleet-sim-probe');
      if (!resolverSkipped) resolver = gw;
    }
  } else {
    const target = etcdTargetFromEnv();
    driver =
      cli.mode === 'before'
        ? new FreshClientPerBeatDriver(target, params.ttlSeconds, callTimeoutMs, registerTimeoutMs, params.prefix)
        : new OwnClientPerPodDriver(target, params.ttlSeconds, callTimeoutMs, registerTimeoutMs);
  }
  return runFleetScenario(driver, params, {
    probe,
    sampler,
    aliveCheck: hasEtcd ? { target: etcdTargetFromEnv() } : undefined,
    resolver,
    resolverSkipped,
    settleMaxMs: num(v, 'settle-max', 60) * 1000,
    label: str(v, 'label', `${cli.mode} ${pods} pods`)!,
  });
}

function runScaleMode(cli: CliArgs, probe: EtcdCounterProbe | undefined, sampler: ProcessSampler, gatewayPid: number | undefined): Promise<SimResult> {
  const v = cli.values;
  const gateways = list(str(v, 'gateway'));
  if (!gateways.length) throw new UsageError('scale mode needs --gateway URL[,URL...]');
  const pods = num(v, 'pods', 1000, 1);
  const silenceFraction = num(v, 'silence', 0);
  if (silenceFraction >= 1) throw new UsageError('--silence is a fraction below 1');
  return runScale(
    {
      gateways,
      pods,
      storm: num(v, 'storm', 0),
      services: num(v, 'services', 100, 1),
      ttlSeconds: num(v, 'ttl', 60, 1),
      intervalSeconds: num(v, 'interval', 20),
      holdSeconds: num(v, 'hold', 0),
      registerConcurrency: num(v, 'register-concurrency', 128, 1),
      stormConcurrency: num(v, 'storm-concurrency', 512, 1),
      sockets: num(v, 'sockets', 256, 1),
      callTimeoutSeconds: num(v, 'call-timeout', 10, 0.1),
      registerDeadlineSeconds: num(v, 'register-timeout', 600, 1),
      rssAt: list(str(v, 'rss-at')).map(Number).filter((n) => n > 0),
      prefix: str(v, 'prefix', process.env.ETCD_PREFIX ?? '/registry/')!,
      label: str(v, 'label', `scale ${pods} pods`)!,
      agents: num(v, 'agents', 0),
      agentGraceMs: num(v, 'agent-grace', 1) * 1000,
      silenceFraction,
    },
    {
      probe,
      sampler,
      gatewayProbe: new GatewayProbe(gateways.map((g) => `${g.replace(/\/$/, '')}/metrics`)),
      aliveCheck: process.env.ETCD_ENDPOINTS ? { target: etcdTargetFromEnv() } : undefined,
      gatewayPid,
    },
  );
}

async function main(): Promise<void> {
  let cli: CliArgs | undefined;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fleet-sim: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (!cli) {
    process.stdout.write(USAGE);
    return;
  }
  const v = cli.values;
  const metricsUrl = str(v, 'etcd-metrics', process.env.ETCD_METRICS_URL);
  const probe = metricsUrl ? new EtcdCounterProbe(metricsUrl) : undefined;
  const pids = parsePidList(str(v, 'sample-pid'));
  const sampler = new ProcessSampler(pids);

  let result: SimResult;
  if (cli.mode === 'cannon') {
    const url = str(v, 'url');
    const scenario = str(v, 'scenario', 'heartbeat');
    if (!url) throw new UsageError('cannon mode needs --url');
    if (scenario !== 'heartbeat' && scenario !== 'resolve') throw new UsageError('--scenario must be heartbeat or resolve');
    result = await runCannon(
      {
        url,
        scenario,
        services: list(str(v, 'service', 'bench')),
        ids: num(v, 'ids', 1000, 1),
        connections: num(v, 'connections', 64, 1),
        durationSeconds: num(v, 'duration', 10, 1),
        warmupSeconds: num(v, 'warmup', 2),
        preregister: v.preregister === true,
        ttlSeconds: num(v, 'ttl', 30, 5),
        label: str(v, 'label', `${scenario} throughput`)!,
      },
      { probe, sampler },
    );
  } else if (cli.mode === 'burst') {
    const gateways = list(str(v, 'gateway'));
    if (!gateways.length) throw new UsageError('burst mode needs --gateway URL[,URL...]');
    result = await runBurst(
      {
        gateways,
        services: num(v, 'services', 20, 1),
        instancesPerService: num(v, 'instances', 5, 1),
        requests: num(v, 'requests', 5000, 1),
        concurrency: num(v, 'concurrency', 500, 1),
        ttlSeconds: num(v, 'ttl', 30, 5),
        label: str(v, 'label', 'cold-cache burst')!,
      },
      { probe, sampler, resolveAvailable: () => resolveUnavailable(gateways[0], 'fleet-sim-probe') },
    );
  } else if (cli.mode === 'scale') {
    result = await runScaleMode(cli, probe, sampler, pids.gateway);
  } else if (cli.mode === 'raw-register') {
    const pods = num(v, 'pods', 1000, 1);
    result = await runRawRegister(
      {
        target: etcdTargetFromEnv(),
        pods,
        services: num(v, 'services', 100, 1),
        concurrency: num(v, 'register-concurrency', 128, 1),
        ttlSeconds: num(v, 'ttl', 60, 1),
        prefix: str(v, 'prefix', process.env.ETCD_PREFIX ?? '/registry/')!,
        label: str(v, 'label', `raw etcd3 ${pods} registrations`)!,
      },
      { probe, sampler },
    );
  } else {
    result = await runFleet(cli, probe, sampler);
  }

  process.stdout.write(renderSummary(result));
  const jsonFile = str(v, 'json');
  if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(result, null, 2) + '\n');
}

main().then(
  // Open etcd/HTTP handles of abandoned clients must not keep a finished run alive.
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fleet-sim: ${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
