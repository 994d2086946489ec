import { ResolvedInstance } from '@app/registry';
import { targetGroupsOf } from './target-groups';

const instance = (id: string, extra: Partial<ResolvedInstance> = {}): ResolvedInstance => ({ id, address: '10.0.0.1', port: 80, metadata: {}, tags: [], weight: 100, status: 'UP', ...extra });

describe('targetGroupsOf (http_sd)', () => {
  it('groups the instances of a service that share their labels', () => {
    expect(
      targetGroupsOf('orders', [
        instance('a', { port: 1, zone: 'z1', tags: ['canary', 'v2'], metadata: { version: '1' } }),
        instance('b', { port: 2, zone: 'z1', tags: ['canary', 'v2'], metadata: { version: '1' } }),
        instance('c', { port: 3, status: 'DRAINING' }),
      ]),
    ).toEqual([
      { targets: ['10.0.0.1:1', '10.0.0.1:2'], labels: { service: 'orders', status: 'UP', zone: 'z1', tags: ',canary,v2,', metadata_version: '1' } },
      { targets: ['10.0.0.1:3'], labels: { service: 'orders', status: 'DRAINING' } },
    ]);
  });

  it('makes metadata keys valid label names, brackets IPv6 and shows foreign names as registered', () => {
    const [group] = targetGroupsOf('my_3Aapp', [instance('a', { address: 'fd00::1', port: 9100, metadata: { 'app.kubernetes.io/name': 'x', 'b-c': 'y' } })]);
    expect(group).toEqual({ targets: ['[fd00::1]:9100'], labels: { service: 'my:app', status: 'UP', metadata_app_kubernetes_io_name: 'x', metadata_b_c: 'y' } });
    for (const name of Object.keys(group.labels)) expect(name).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
  });

  it('answers no group for no instances', () => {
    expect(targetGroupsOf('orders', [])).toEqual([]);
  });
});
