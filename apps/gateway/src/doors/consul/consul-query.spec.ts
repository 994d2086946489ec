import { InvalidRequestError, ResolvedInstance } from '@app/registry';
import { checksOf, healthEntry, tagUnion } from './consul-answers';
import { consulIndex, parseConsulQuery, UnknownDatacenterError } from './consul-query';
import { CONSUL_CHECK_KEY, CONSUL_MAINTENANCE_KEY } from './consul-registration';

describe('parseConsulQuery', () => {
  it("reads Prometheus's blocking query (index, stale=, wait=120000ms)", () => {
    expect(parseConsulQuery({ index: '42', stale: '', wait: '120000ms' }, 'dc1')).toEqual({ blocking: { index: 42, waitMs: 120_000 }, passing: false, tags: [] });
  });

  it('does not block without an index, with an empty one or with index=0; waits 5 min by default and at most 10', () => {
    expect(parseConsulQuery({ wait: '10s' }, 'dc1').blocking).toBeUndefined();
    expect(parseConsulQuery({ index: '' }, 'dc1').blocking).toBeUndefined();
    expect(parseConsulQuery({ index: '0' }, 'dc1').blocking).toBeUndefined();
    expect(parseConsulQuery({ index: '7' }, 'dc1').blocking).toEqual({ index: 7, waitMs: 300_000 });
    expect(parseConsulQuery({ index: '7', wait: '1h' }, 'dc1').blocking).toEqual({ index: 7, waitMs: 600_000 });
  });

  it('reads passing (present unless false) and repeated tags', () => {
    expect(parseConsulQuery({ passing: '' }, 'dc1').passing).toBe(true);
    expect(parseConsulQuery({ passing: '1' }, 'dc1').passing).toBe(true);
    expect(parseConsulQuery({ passing: 'false' }, 'dc1').passing).toBe(false);
    expect(parseConsulQuery({ tag: ['a', 'b'] }, 'dc1').tags).toEqual(['a', 'b']);
  });

  it('refuses what it cannot honour: another datacenter (500 in Consul), filters, bad index or wait', () => {
    expect(() => parseConsulQuery({ dc: 'dc2' }, 'dc1')).toThrow(UnknownDatacenterError);
    expect(parseConsulQuery({ dc: 'dc1' }, 'dc1').blocking).toBeUndefined();
    for (const query of [{ filter: 'Service.Meta.x == 1' }, { 'node-meta': 'a:b' }, { index: 'x' }, { index: '99999999999999999999' }, { wait: 'soon' }]) {
      expect(() => parseConsulQuery(query, 'dc1')).toThrow(InvalidRequestError);
    }
  });
});

describe('consulIndex', () => {
  it('is at least 1', () => expect(consulIndex('0', 0, undefined)).toBe('1'));
  it('is the view index when past the client index', () => expect(consulIndex('12', 15, { index: 10, waitMs: 1 })).toBe('12'));
  it("stays at the client's index after a wait without change, when this replica has seen that revision", () => {
    expect(consulIndex('12', 20, { index: 18, waitMs: 1 })).toBe('18');
  });
  it('does not echo an index this replica has never reached: the client starts over, as with Consul', () => {
    expect(consulIndex('12', 20, { index: 5_000, waitMs: 1 })).toBe('12');
  });
});

describe('Consul answers', () => {
  const instance = (over: Partial<ResolvedInstance> = {}): ResolvedInstance => ({
    id: 'web_3A1',
    address: '10.0.0.1',
    port: 80,
    metadata: { [CONSUL_CHECK_KEY]: '10s', v: '1' },
    tags: ['a'],
    weight: 100,
    status: 'UP',
    ...over,
  });
  const ctx = { datacenter: 'dc1', index: 9 };
  const statuses = (i: ResolvedInstance) => checksOf(i, 'web', ctx).map((c) => [c.CheckID, c.Status]);

  it('decodes the ID, hides the door metadata and synthesises the node from the address and zone', () => {
    const entry = healthEntry(instance({ zone: 'z1' }), 'web', ctx);
    expect(entry.Service).toMatchObject({ ID: 'web:1', Service: 'web', Meta: { v: '1' }, Tags: ['a'] });
    expect(entry.Node).toMatchObject({ Node: '10.0.0.1', Datacenter: 'dc1', Meta: { zone: 'z1' } });
  });

  it("maps the status onto the TTL check, adds the maintenance check, and shows a REST instance's status too", () => {
    expect(statuses(instance())).toEqual([
      ['serfHealth', 'passing'],
      ['service:web:1', 'passing'],
    ]);
    expect(statuses(instance({ status: 'DRAINING' }))[1]).toEqual(['service:web:1', 'warning']);
    expect(statuses(instance({ status: 'DRAINING', metadata: { [CONSUL_CHECK_KEY]: '10s', [CONSUL_MAINTENANCE_KEY]: '' } }))).toEqual([
      ['serfHealth', 'passing'],
      ['service:web:1', 'passing'],
      ['_service_maintenance:web:1', 'critical'],
    ]);
    expect(statuses(instance({ metadata: {} }))).toEqual([['serfHealth', 'passing']]);
    expect(statuses(instance({ metadata: {}, status: 'DOWN' }))[1]).toEqual(['service:web:1', 'critical']);
  });

  it('lists each tag of a service once', () => expect(tagUnion([instance({ tags: ['a', 'b'] }), instance({ tags: ['b', 'c'] })])).toEqual(['a', 'b', 'c']));
});
