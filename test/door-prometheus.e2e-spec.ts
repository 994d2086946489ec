/**
 * Issue 23, Prometheus service discovery against the shared etcd + Redis, with authentication on:
 * `GET /v1/sd/prometheus` (http_sd target groups with resolve's filters), then a real Prometheus
 * (Debian's /usr/bin/prometheus, tools/stack/ensure-test-tools.sh) whose eureka_sd_configs and
 * http_sd_configs point at the gateway: its /api/v1/targets lists the registered instances and drops
 * a deregistered one. Instances sit on 127.0.0.1 ports nothing listens on: Prometheus's scrapes fail
 * at once (targets are listed whatever their health) and never leave the loopback.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts, httpGet, spawnTracked, SpawnedProcess, terminate, logTail } from '../tools/stack/procs';
import { rawRequest } from './support/http';
import { instancePath, useSecuredGateway } from './support/security';
import { waitFor } from './support/wait';

jest.setTimeout(120_000);

const PROMETHEUS = '/usr/bin/prometheus';

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

interface ActiveTarget {
  scrapePool: string;
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
}

describe('Prometheus service discovery', () => {
  const ctx = useSecuredGateway();
  let ports: number[];
  const register = async (service: string, id: string, port: number, extra: Record<string, unknown> = {}) =>
    expect(
      (await rawRequest(ctx.gw.url, { method: 'PUT', path: instancePath(service, id), token: ctx.tokens.admin, body: { address: '127.0.0.1', port, ttl: 120, ...extra } })).status,
    ).toBe(201);
  const sd = (query = '', token = ctx.tokens.reader) => rawRequest(ctx.gw.url, { method: 'GET', path: `/v1/sd/prometheus${query}`, token });

  beforeAll(async () => {
    ports = await freePorts(4);
    await register('metrics-a', 'a1', ports[0], { zone: 'z1', tags: ['canary', 'v2'], metadata: { version: '1.4', 'team.name': 'core' } });
    await register('metrics-a', 'a2', ports[1], { zone: 'z1', tags: ['canary', 'v2'], metadata: { version: '1.4', 'team.name': 'core' } });
    await register('metrics-a', 'a3', ports[2], { status: 'DRAINING' });
    // Through the Eureka door: one registry behind every door.
    const eureka = await rawRequest(ctx.gw.url, {
      method: 'POST',
      path: '/eureka/apps/METRICS-B',
      headers: { authorization: `Bearer ${ctx.tokens.admin}` },
      body: { instance: { instanceId: 'host:metrics-b:1', ipAddr: '127.0.0.1', hostName: '127.0.0.1', port: { $: ports[3], '@enabled': 'true' }, leaseInfo: { durationInSecs: 120 } } },
    });
    expect(eureka.status).toBe(204);
  });

  it('answers http_sd target groups per service and label set, with the filters of resolve', async () => {
    const all = await sd('?service=metrics-a&service=metrics-b');
    expect(all.status).toBe(200);
    expect(all.json as TargetGroup[]).toEqual([
      {
        targets: [`127.0.0.1:${ports[0]}`, `127.0.0.1:${ports[1]}`],
        labels: { service: 'metrics-a', status: 'UP', zone: 'z1', tags: ',canary,v2,', metadata_team_name: 'core', metadata_version: '1.4' },
      },
      { targets: [`127.0.0.1:${ports[3]}`], labels: { service: 'metrics-b', status: 'UP' } },
    ]);
    expect((await sd('?service=metrics-a&status=all')).json).toHaveLength(2);
    expect((await sd('?service=metrics-a&status=draining')).json).toEqual([{ targets: [`127.0.0.1:${ports[2]}`], labels: { service: 'metrics-a', status: 'DRAINING' } }]);
    expect((await sd('?tag=canary')).json.map((g: TargetGroup) => g.labels.service)).toEqual(['metrics-a']);
    expect((await sd('?service=metrics-a&meta=version=9')).json).toEqual([]);

    for (const query of ['?status=asleep', '?zone=%20', '?colour=red', '?index=1', '?service=%3Abad']) expect({ query, status: (await sd(query)).status }).toEqual({ query, status: 400 });
    expect((await sd('', 'not-a-token-at-all')).status).toBe(401);
    expect((await sd('', ctx.tokens.agent)).status).toBe(403);
    expect(await ctx.gw.metric('registry_door_requests_total', { door: 'prometheus_sd', operation: 'targets', status: '200' })).toBeGreaterThanOrEqual(5);
    expect(await ctx.gw.metric('registry_door_requests_total', { door: 'prometheus_sd', operation: 'targets', status: '401' })).toBe(1);
  });

  describe('a real Prometheus', () => {
    let dir: string;
    let log: string;
    let prometheus: SpawnedProcess | undefined;
    let url: string;

    beforeAll(async () => {
      if (!fs.existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} is missing: run tools/stack/ensure-test-tools.sh (Debian package prometheus)`);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-prometheus-'));
      const [port] = await freePorts(1);
      url = `http://127.0.0.1:${port}`;
      const gateway = ctx.gw.url.replace(/\/$/, '');
      const config = [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 500ms',
        'scrape_configs:',
        '  - job_name: eureka',
        '    eureka_sd_configs:',
        `      - server: ${gateway}/eureka`,
        '        refresh_interval: 1s',
        // Basic auth, as Eureka servers are usually secured: user = token name, password = token.
        '        basic_auth:',
        '          username: dashboards',
        `          password: ${ctx.tokens.reader}`,
        '  - job_name: http_sd',
        '    http_sd_configs:',
        `      - url: ${gateway}/v1/sd/prometheus?service=metrics-a&service=metrics-b`,
        '        refresh_interval: 1s',
        // `type: Bearer` spelled out: Debian's Prometheus 2.42 sends the bare credentials in http_sd without it.
        '        authorization:',
        '          type: Bearer',
        `          credentials: ${ctx.tokens.reader}`,
        '',
      ].join('\n');
      fs.writeFileSync(path.join(dir, 'prometheus.yml'), config, { mode: 0o600 });
      log = path.join(dir, 'prometheus.log');
      prometheus = spawnTracked(
        PROMETHEUS,
        [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
        log,
      );
      await waitFor(`Prometheus to be ready (log: ${log})`, async () => (await httpGet(`${url}/-/ready`)).status === 200, 30_000, 200).catch((err: Error) => {
        throw new Error(`${err.message}\n${logTail(log)}`);
      });
    });

    afterAll(async () => {
      if (prometheus) await terminate(prometheus);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const activeTargets = async (): Promise<ActiveTarget[]> => JSON.parse((await httpGet(`${url}/api/v1/targets?state=active`)).body).data.activeTargets as ActiveTarget[];
    const addresses = (targets: ActiveTarget[], pool: string) =>
      targets
        .filter((t) => t.scrapePool === pool)
        // eureka_sd sets `instance` to the Eureka instance id: the scraped address is __address__.
        .map((t) => t.discoveredLabels.__address__)
        .sort();

    it('lists the registered instances through eureka_sd and http_sd, and drops a deregistered one', async () => {
      const up = [ports[0], ports[1], ports[3]].map((p) => `127.0.0.1:${p}`).sort();
      const everyone = [...ports].map((p) => `127.0.0.1:${p}`).sort();
      let targets: ActiveTarget[] = [];
      await waitFor(
        'Prometheus to list every instance',
        async () => {
          targets = await activeTargets();
          // http_sd: resolve's default, UP instances; Eureka: every instance (Prometheus keeps them all, status in a label).
          return JSON.stringify(addresses(targets, 'http_sd')) === JSON.stringify(up) && JSON.stringify(addresses(targets, 'eureka')) === JSON.stringify(everyone);
        },
        60_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last targets: ${JSON.stringify(targets.map((t) => [t.scrapePool, t.discoveredLabels.__address__]))}\n${logTail(log)}`);
      });
      const at = (pool: string, port: number) => targets.find((t) => t.scrapePool === pool && t.discoveredLabels.__address__ === `127.0.0.1:${port}`)!;
      const a1 = at('http_sd', ports[0]);
      expect(a1.labels).toMatchObject({ service: 'metrics-a', zone: 'z1', status: 'UP', tags: ',canary,v2,', metadata_version: '1.4', metadata_team_name: 'core' });
      const b1 = at('eureka', ports[3]);
      expect(b1.discoveredLabels).toMatchObject({ __meta_eureka_app_name: 'METRICS-B', __meta_eureka_app_instance_id: 'host:metrics-b:1', __meta_eureka_app_instance_status: 'UP' });
      const a3 = at('eureka', ports[2]);
      expect(a3.discoveredLabels).toMatchObject({ __meta_eureka_app_name: 'METRICS-A', __meta_eureka_app_instance_status: 'OUT_OF_SERVICE' });

      // Deregistered through REST (a2) and through Eureka (b1): both jobs drop them.
      expect((await rawRequest(ctx.gw.url, { method: 'DELETE', path: instancePath('metrics-a', 'a2'), token: ctx.tokens.admin })).status).toBe(204);
      const cancel = await rawRequest(ctx.gw.url, { method: 'DELETE', path: '/eureka/v2/apps/METRICS-B/host:metrics-b:1', headers: { authorization: `Bearer ${ctx.tokens.admin}` } });
      expect(cancel.status).toBe(200);
      const remaining = [`127.0.0.1:${ports[0]}`];
      await waitFor(
        'Prometheus to drop the deregistered instances',
        async () => {
          targets = await activeTargets();
          return JSON.stringify(addresses(targets, 'http_sd')) === JSON.stringify(remaining) && JSON.stringify(addresses(targets, 'eureka')) === JSON.stringify([...remaining, `127.0.0.1:${ports[2]}`].sort());
        },
        60_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last targets: ${JSON.stringify(targets.map((t) => [t.scrapePool, t.discoveredLabels.__address__]))}\n${logTail(log)}`);
      });
      expect(await ctx.gw.metric('registry_door_requests_total', { door: 'eureka', operation: 'get_apps', status: '200' })).toBeGreaterThan(0);
    });
  });
});
