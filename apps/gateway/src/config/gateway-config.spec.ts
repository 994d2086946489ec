import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_LEASE_TTL_SECONDS } from '@app/etcd';
import { loadGatewayConfig } from './gateway-config';

describe('loadGatewayConfig', () => {
  it('uses the embedded defaults', () => {
    const config = loadGatewayConfig({});
    expect(config).toMatchObject({ PORT: 8080, ETCD_POOL_SIZE: 2, ETCD_PREFIX: '/registry/', ETCD_ENDPOINTS: ['127.0.0.1:2379'] });
  });

  it('has the shared-lease settings (LEASE_TTL 120, LEASE_MAX_KEYS 1000) and ignores the removed lease-engine ones, even invalid', () => {
    expect(loadGatewayConfig({})).toMatchObject({ LEASE_TTL: 120, LEASE_MAX_KEYS: 1000, MIGRATIONS_PER_SECOND: 2000 });
    const config = loadGatewayConfig({ RENEW_INTERVAL_MS: 'x', RENEWAL_DEDUP: 'maybe', REGRANTS_PER_SECOND: '-1', RENEWAL_LAG_MAX_MS: '0', LEASE_TTL: '600', LEASE_MAX_KEYS: '250' });
    expect(config).toMatchObject({ LEASE_TTL: 600, LEASE_MAX_KEYS: 250 });
    expect(config).not.toHaveProperty('RENEW_INTERVAL_MS');
    expect(() => loadGatewayConfig({ LEASE_TTL: '10' })).toThrow(/^invalid LEASE_TTL:/);
    expect(() => loadGatewayConfig({ LEASE_TTL: '3601' })).toThrow(/^invalid LEASE_TTL:/);
    expect(() => loadGatewayConfig({ LEASE_MAX_KEYS: '0' })).toThrow(/^invalid LEASE_MAX_KEYS:/);
  });

  it('accepts LEASE_TTL down to the shortest lease that outlives a dead replica\'s takeover (MIN_LEASE_TTL_SECONDS), not below', () => {
    expect(loadGatewayConfig({ LEASE_TTL: String(MIN_LEASE_TTL_SECONDS) }).LEASE_TTL).toBe(MIN_LEASE_TTL_SECONDS);
    expect(() => loadGatewayConfig({ LEASE_TTL: String(MIN_LEASE_TTL_SECONDS - 1) })).toThrow(/^invalid LEASE_TTL:/);
  });

  it('leaves the Consul door off unless CONSUL_API_PORT is set; its datacenter is dc1 by default', () => {
    const defaults = loadGatewayConfig({});
    expect(defaults.CONSUL_API_PORT).toBeUndefined();
    expect(defaults.CONSUL_DATACENTER).toBe('dc1');
    expect(loadGatewayConfig({ CONSUL_API_PORT: '8500', CONSUL_DATACENTER: 'eu-west' })).toMatchObject({ CONSUL_API_PORT: 8500, CONSUL_DATACENTER: 'eu-west' });
  });

  it.each([
    ['ETCD_POOL_SIZE', 'abc'],
    ['ETCD_POOL_SIZE', '0'],
    ['PORT', '70000'],
    ['ETCD_PREFIX', 'registry'],
    ['ETCD_ENDPOINTS', 'http://x'],
    ['REDIS_URL', 'localhost'],
    ['CONSUL_API_PORT', '65536'],
    ['CONSUL_DATACENTER', 'dc 1'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadGatewayConfig({ [name]: value })).toThrow(new RegExp(`^invalid ${name}:`));
  });

  it('reads REDIS_URL (which may carry a password) from REDIS_URL_FILE, and names the variable of an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'redis'), 'redis://:pw@127.0.0.1:6390\n');
    expect(loadGatewayConfig({ REDIS_URL_FILE: join(dir, 'redis') }).REDIS_URL).toBe('redis://:pw@127.0.0.1:6390');
    expect(() => loadGatewayConfig({ ETCD_USERNAME: 'gw', ETCD_PASSWORD_FILE: join(dir, 'missing') })).toThrow(/^ETCD_PASSWORD_FILE: cannot read .* ENOENT/);
    expect(() => loadGatewayConfig({ ETCD_PASSWORD: 'x', ETCD_PASSWORD_FILE: join(dir, 'redis') })).toThrow(/ETCD_PASSWORD and ETCD_PASSWORD_FILE are both set/);
  });

  it('reads the etcd password from ETCD_PASSWORD_FILE and never echoes it in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    expect(loadGatewayConfig({ ETCD_USERNAME: 'gw', ETCD_PASSWORD_FILE: join(dir, 'pw') }).ETCD_PASSWORD).toBe('s3cret');
    expect(() => loadGatewayConfig({ ETCD_PASSWORD: 's3cret' })).toThrow(/ETCD_USERNAME and ETCD_PASSWORD/);
    try {
      loadGatewayConfig({ ETCD_USERNAME: 'gw', ETCD_PASSWORD: 's3cret', ETCD_POOL_SIZE: 'x' });
    } catch (err) {
      expect(String(err)).not.toContain('s3cret');
    }
  });
});
