import { InvalidRequestError, ResolvedInstance } from '@app/registry';
import { appOfService, appsHashcode, eurekaInstanceOf, registrationOf, serviceOfApp } from './eureka-instance';

const instance = (extra: Record<string, unknown> = {}) => ({ instance: { instanceId: 'host-1:orders:8080', app: 'ORDERS', ipAddr: '10.0.0.5', port: 8080, ...extra } });
const refusal = (app: string, body: unknown): InvalidRequestError => {
  try {
    registrationOf(app, body);
  } catch (err) {
    if (err instanceof InvalidRequestError) return err;
    throw err;
  }
  throw new Error('registrationOf accepted the body');
};

describe('Eureka names', () => {
  it('stores an app under its lower-case name, escaped, and reads it back upper case', () => {
    expect(serviceOfApp('ORDERS')).toBe('orders');
    expect(serviceOfApp('orders')).toBe('orders');
    expect(serviceOfApp('MY:APP')).toBe('my_3Aapp');
    expect(appOfService('my_3Aapp')).toBe('MY:APP');
    expect(appOfService('payments')).toBe('PAYMENTS');
    expect(() => serviceOfApp(':x')).toThrow(InvalidRequestError);
  });

  it("keeps Spring's host:app:port instance id exactly", () => {
    const { id } = registrationOf('ORDERS', instance());
    expect(id).toBe('host-1_3Aorders_3A8080');
    expect(eurekaInstanceOf('orders', { id, address: '10.0.0.5', port: 8080, metadata: {}, tags: [], weight: 100, status: 'UP' }).instanceId).toBe('host-1:orders:8080');
  });
});

describe('registrationOf (POST /apps/{app} body)', () => {
  it('maps the fields the registry has, with Eureka defaults for the rest', () => {
    expect(registrationOf('orders', instance({ metadata: { version: '1', '@class': 'java.util.Collections$EmptyMap', n: 3 } }))).toEqual({
      service: 'orders',
      id: 'host-1_3Aorders_3A8080',
      registration: { address: '10.0.0.5', port: 8080, ttl: 90, metadata: { version: '1', n: '3' }, tags: [], weight: 100, status: 'UP' },
    });
  });

  it('takes port as a number, as text (XML) and as {"$", "@enabled"}, and the enabled securePort when port is off', () => {
    const port = (value: unknown, securePort?: unknown) => registrationOf('ORDERS', instance({ port: value, securePort })).registration.port;
    expect(port(8080)).toBe(8080);
    expect(port('8081')).toBe(8081);
    expect(port({ $: 8082, '@enabled': 'true' })).toBe(8082);
    expect(port({ $: '8083', '@enabled': true })).toBe(8083);
    expect(port({ $: 8080, '@enabled': 'false' }, { $: 8443, '@enabled': 'true' })).toBe(8443);
    expect(port(undefined, { $: 8443, '@enabled': 'true' })).toBe(8443);
    for (const bad of [0, 70000, '80a', { $: 'x' }, 1.5]) expect(refusal('ORDERS', instance({ port: bad })).field).toBe('instance.port');
  });

  it('makes leaseInfo.durationInSecs the TTL, within the REST bounds', () => {
    expect(registrationOf('ORDERS', instance({ leaseInfo: { durationInSecs: 30, renewalIntervalInSecs: 10 } })).registration.ttl).toBe(30);
    expect(registrationOf('ORDERS', instance({ leaseInfo: { durationInSecs: '15' } })).registration.ttl).toBe(15);
    expect(registrationOf('ORDERS', instance({ leaseInfo: {} })).registration.ttl).toBe(90);
    for (const bad of [4, 301, 'ninety', -1]) expect(refusal('ORDERS', instance({ leaseInfo: { durationInSecs: bad } })).message).toMatch(/durationInSecs must be an integer from 5 to 300/);
  });

  it('maps the Eureka statuses onto UP, DRAINING and DOWN', () => {
    const status = (value: string) => registrationOf('ORDERS', instance({ status: value })).registration.status;
    expect([status('UP'), status('OUT_OF_SERVICE'), status('DOWN'), status('STARTING'), status('UNKNOWN')]).toEqual(['UP', 'DRAINING', 'DOWN', 'DOWN', 'DOWN']);
    expect(refusal('ORDERS', instance({ status: 'SLEEPY' })).field).toBe('instance.status');
  });

  it('takes null fields as not given (Jackson-based clients write them)', () => {
    expect(registrationOf('ORDERS', instance({ hostName: null, securePort: null, leaseInfo: null, metadata: null, status: null, appGroupName: null })).registration).toMatchObject({
      address: '10.0.0.5',
      port: 8080,
      ttl: 90,
      metadata: {},
      status: 'UP',
    });
  });

  it('falls back on hostName for the id and the address, as Eureka does', () => {
    const { id, registration } = registrationOf('ORDERS', { instance: { hostName: 'pod-1.example', port: 80 } });
    expect(id).toBe('pod-1.example');
    expect(registration.address).toBe('pod-1.example');
  });

  it('refuses what it cannot map, naming the Eureka field', () => {
    expect(refusal('ORDERS', {}).field).toBe('instance');
    expect(refusal('ORDERS', { instance: [] }).field).toBe('instance');
    expect(refusal('ORDERS', { instance: { ipAddr: '10.0.0.1', port: 80 } }).field).toBe('instance.instanceId');
    expect(refusal('ORDERS', { instance: { instanceId: 'x', port: 80 } }).field).toBe('instance.ipAddr');
    expect(refusal('ORDERS', instance({ app: 'BILLING' })).field).toBe('instance.app');
    expect(refusal('ORDERS', instance({ metadata: { a: { b: 1 } } })).field).toBe('instance.metadata');
    expect(refusal('ORDERS', instance({ instanceId: 'x'.repeat(129) })).field).toBe('instanceId');
  });
});

describe('reads', () => {
  const resolved = (id: string, status: ResolvedInstance['status']): ResolvedInstance => ({ id, address: '10.0.0.1', port: 80, metadata: {}, tags: [], weight: 100, status });

  it("writes an instance in Eureka's JSON convention", () => {
    expect(eurekaInstanceOf('orders', { ...resolved('o1', 'DRAINING'), metadata: { v: '1' }, registeredAt: '2026-01-01T00:00:00.000Z' })).toMatchObject({
      instanceId: 'o1',
      app: 'ORDERS',
      hostName: '10.0.0.1',
      ipAddr: '10.0.0.1',
      status: 'OUT_OF_SERVICE',
      port: { $: 80, '@enabled': 'true' },
      securePort: { $: 443, '@enabled': 'false' },
      vipAddress: 'orders',
      metadata: { v: '1' },
      lastDirtyTimestamp: String(Date.parse('2026-01-01T00:00:00.000Z')),
    });
  });

  it('counts statuses in apps__hashcode as Eureka does', () => {
    expect(appsHashcode([{ instances: [resolved('o1', 'UP'), resolved('o2', 'DOWN')] }, { instances: [resolved('b1', 'UP'), resolved('b2', 'DRAINING')] }, { instances: [] }])).toBe(
      'DOWN_1_OUT_OF_SERVICE_1_UP_2_',
    );
  });
});
