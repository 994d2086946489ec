import { DOOR_TAG_LIMITS, InvalidRequestError, toRegistryName } from '@app/registry';
import { parseGoDuration } from './consul-durations';
import { CONSUL_CHECK_KEY, CONSUL_MAINTENANCE_KEY, maintenanceChange, parseServiceRegistration, statusAfterCheck } from './consul-registration';

const base = { Name: 'payments', ID: 'payments-1', Address: '10.0.0.1', Port: 8080 };
const refused = (body: unknown) => {
  try {
    parseServiceRegistration(body, '10.9.9.9');
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequestError);
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('parseGoDuration', () => {
  it.each([
    ['10s', 10_000],
    ['120000ms', 120_000],
    ['1m30s', 90_000],
    ['1m0s', 60_000],
    ['1.5h', 5_400_000],
    ['500us', 0.5],
    ['0', 0],
  ])('%s is %d ms', (text, ms) => expect(parseGoDuration(text)).toBe(ms));

  it.each(['', '10', '-5s', '10 s', 's', '1d', '10sx'])('refuses %j', (text) => expect(parseGoDuration(text)).toBeUndefined());
});

describe('parseServiceRegistration', () => {
  it('maps names reversibly, keeps Meta and packed tags byte for byte, and marks the instance as a Consul one', () => {
    const packed = 'e-' + 'ab'.repeat(8_000);
    const parsed = parseServiceRegistration({ ...base, ID: 'payments:10.0.0.1:8080', Tags: [packed, 'ü/ß'], Meta: { version: '1' }, Check: { TTL: '10s', Status: 'passing' } }, '10.9.9.9');
    expect(parsed.service).toBe('payments');
    expect(parsed.id).toBe(toRegistryName('payments:10.0.0.1:8080'));
    expect(parsed.registration).toMatchObject({ address: '10.0.0.1', port: 8080, ttl: 10, tags: [packed, 'ü/ß'], status: 'UP' });
    expect(parsed.registration.metadata).toEqual({ version: '1', [CONSUL_CHECK_KEY]: '10s' });
  });

  it('starts a TTL-checked service critical (DOWN) unless Status says otherwise, as Consul does; without a check it is UP', () => {
    expect(parseServiceRegistration({ ...base, Check: { TTL: '30s' } }, '').registration.status).toBe('DOWN');
    expect(parseServiceRegistration({ ...base, Checks: [{ TTL: '30s', Status: 'warning' }] }, '').registration.status).toBe('DRAINING');
    const unchecked = parseServiceRegistration(base, '').registration;
    expect(unchecked).toMatchObject({ status: 'UP', ttl: 30 });
    expect(unchecked.metadata[CONSUL_CHECK_KEY]).toBe('');
  });

  it('takes keys in any case and snake_case, defaults the ID to the name and the address to the client', () => {
    const parsed = parseServiceRegistration({ name: 'web', port: 80, check: { ttl: '1m0s', deregister_critical_service_after: '90m' } }, '10.9.9.9');
    expect(parsed).toMatchObject({ service: 'web', id: 'web', registration: { address: '10.9.9.9', ttl: 60 } });
  });

  it('rounds a TTL up to whole seconds within the REST bounds (5-300 s)', () => {
    expect(parseServiceRegistration({ ...base, Check: { TTL: '5500ms' } }, '').registration.ttl).toBe(6);
    expect(refused({ ...base, Check: { TTL: '4s' } })).toMatch(/from 5s to 300s/);
    expect(refused({ ...base, Check: { TTL: '5m1s' } })).toMatch(/from 5s to 300s/);
  });

  it.each([
    [{ ...base, Check: { HTTP: 'http://x/health', Interval: '10s' } }, /HTTP checks are not run/],
    [{ ...base, Check: { Args: ['/bin/true'], Interval: '10s' } }, /ARGS checks are not run/],
    [{ ...base, Check: { AliasService: 'db' } }, /ALIASSERVICE checks are not run/],
    [{ ...base, Check: { Interval: '10s' } }, /needs a TTL/],
    [{ ...base, Check: { TTL: '10s', CheckID: 'custom' } }, /CheckID must be "service:payments-1"/],
    [{ ...base, Check: { TTL: '10s', Status: 'ok' } }, /Status must be/],
    [{ ...base, Check: { TTL: '10s', DeregisterCriticalServiceAfter: 'soon' } }, /DeregisterCriticalServiceAfter/],
    [{ ...base, Check: { TTL: '10s' }, Checks: [{ TTL: '10s' }] }, /one TTL check/],
    [{ ...base, Name: '' }, /Missing service name/],
    [{ ...base, Name: '_hidden' }, /cannot be mapped/],
    [{ ...base, ID: 'x'.repeat(129) }, /cannot be mapped/],
    [{ ...base, Port: 0 }, /Port/],
    [{ ...base, Port: '80' }, /Port/],
    [{ ...base, Address: 'a b' }, /Address/],
    [{ ...base, Meta: { 'a.b': 'x' } }, /Meta keys/],
    [{ ...base, Meta: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'])) }, /at most 63 keys/],
    [{ ...base, Tags: Array.from({ length: DOOR_TAG_LIMITS.maxCount + 1 }, () => 't') }, /Tags/],
    [{ ...base, Tags: ['x'.repeat(DOOR_TAG_LIMITS.maxTotalBytes + 1)] }, /Tags/],
    [{ ...base, Tags: [1] }, /Tags must be/],
    [{ ...base, Connect: { Native: true } }, /Connect/],
    [[base], /JSON object/],
  ])('refuses %j', (body, message) => expect(refused(body)).toMatch(message));
});

describe('check and maintenance status mapping', () => {
  it('pass/warn/fail are UP/DRAINING/DOWN; in maintenance only a failing check changes DRAINING', () => {
    expect([statusAfterCheck('passing', false), statusAfterCheck('warning', false), statusAfterCheck('critical', false)]).toEqual(['UP', 'DRAINING', 'DOWN']);
    expect([statusAfterCheck('passing', true), statusAfterCheck('warning', true), statusAfterCheck('critical', true)]).toEqual(['DRAINING', 'DRAINING', 'DOWN']);
  });

  it('maintenance on drains (a DOWN service stays DOWN) and keeps the reason; off brings a drained service back UP', () => {
    const on = maintenanceChange({ status: 'UP', metadata: { v: '1' } }, true, 'deploy');
    expect(on).toEqual({ status: 'DRAINING', metadata: { v: '1', [CONSUL_MAINTENANCE_KEY]: 'deploy' } });
    expect(maintenanceChange({ status: 'DOWN', metadata: {} }, true, '').status).toBe('DOWN');
    expect(maintenanceChange(on, false, '')).toEqual({ status: 'UP', metadata: { v: '1' } });
    // Disabling what was never enabled changes nothing (a REST-drained instance stays drained).
    expect(maintenanceChange({ status: 'DRAINING', metadata: {} }, false, '')).toEqual({ status: 'DRAINING', metadata: {} });
    expect(maintenanceChange({ status: 'UP', metadata: {} }, true, 'r'.repeat(600)).metadata[CONSUL_MAINTENANCE_KEY]).toHaveLength(512);
  });
});
