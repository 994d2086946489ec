import { KeyLayout, prefixRangeEnd } from './key-layout';
import { isValidName } from './names';

describe('KeyLayout', () => {
  const layout = new KeyLayout('/registry/');

  it('builds instance keys under the prefix and parses them back', () => {
    const key = layout.instanceKey('payments', 'pod-1.a_b');
    expect(key).toBe('/registry/services/payments/pod-1.a_b');
    expect(layout.parseInstanceKey(key)).toEqual({ service: 'payments', id: 'pod-1.a_b' });
  });

  it.each(['../x', 'a/b', '', '.hidden', 'x'.repeat(129), 'sp ace', 'ünï'])('refuses to build a key from %p', (bad) => {
    expect(isValidName(bad)).toBe(false);
    expect(() => layout.instanceKey(bad, 'ok')).toThrow();
    expect(() => layout.instanceKey('ok', bad)).toThrow();
  });

  it('accepts 128-character names', () => {
    expect(isValidName('a'.repeat(128))).toBe(true);
  });

  it('ignores keys that are not instance keys', () => {
    expect(layout.parseInstanceKey('/other/services/a/b')).toBeUndefined();
    expect(layout.parseInstanceKey('/registry/services/a')).toBeUndefined();
    expect(layout.parseInstanceKey('/registry/services/a/b/c')).toBeUndefined();
  });

  it("builds a replica's presence key under <prefix>gateway/ from a hex id only, never an instance key", () => {
    const key = layout.replicaKey('0a1b2c3d4e5f');
    expect(key).toBe('/registry/gateway/replicas/0a1b2c3d4e5f');
    expect(layout.parseInstanceKey(key)).toBeUndefined();
    for (const bad of ['../x', 'A1', '', 'a/b', 'f'.repeat(33)]) expect(() => layout.replicaKey(bad)).toThrow();
  });

  it("builds a shared lease's record key from a decimal lease id only, and parses gateway keys back", () => {
    const key = layout.leaseRecordKey('7587892541348512306');
    expect(key).toBe('/registry/gateway/leases/7587892541348512306');
    expect(layout.parseInstanceKey(key)).toBeUndefined();
    expect(layout.parseGatewayKey(key)).toEqual({ kind: 'lease', id: '7587892541348512306' });
    expect(layout.parseGatewayKey(layout.replicaKey('0a1b'))).toEqual({ kind: 'replica', id: '0a1b' });
    for (const other of ['/registry/gateway/other/1', '/registry/gateway/leases/x1', '/registry/services/a/b']) expect(layout.parseGatewayKey(other)).toBeUndefined();
    for (const bad of ['0', '-1', '1a', '../1', '']) expect(() => layout.leaseRecordKey(bad)).toThrow();
  });

  it('requires a prefix that starts and ends with a slash', () => {
    expect(() => new KeyLayout('registry')).toThrow();
  });

  it('computes the etcd range end of a prefix', () => {
    expect(prefixRangeEnd('/registry/').toString()).toBe('/registry0');
  });
});
