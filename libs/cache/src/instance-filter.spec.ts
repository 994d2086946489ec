import { ResolvedInstance } from '@app/registry';
import { filterInstances } from './instance-filter';

const instance = (id: string, extra: Partial<ResolvedInstance> = {}): ResolvedInstance => ({
  id,
  address: '10.0.0.1',
  port: 80,
  metadata: {},
  tags: [],
  weight: 100,
  status: 'UP',
  ...extra,
});

describe('filterInstances', () => {
  const all = [
    instance('a', { tags: ['canary', 'v2'], zone: 'z1', metadata: { version: '2', tier: 'gold' } }),
    instance('b', { tags: ['v2'], zone: 'z2', metadata: { version: '2' } }),
    instance('c', { tags: ['canary'], zone: 'z1', status: 'DRAINING' }),
    instance('d', { status: 'DOWN', zone: 'z1' }),
  ];
  const ids = (filter: Parameters<typeof filterInstances>[1]) => filterInstances(all, filter).map((i) => i.id);

  it('returns UP instances only by default', () => {
    expect(ids({})).toEqual(['a', 'b']);
  });

  it('returns every status with "all", or exactly the one asked for', () => {
    expect(ids({ status: 'all' })).toEqual(['a', 'b', 'c', 'd']);
    expect(ids({ status: 'DRAINING' })).toEqual(['c']);
  });

  it('requires every tag', () => {
    expect(ids({ tags: ['v2'] })).toEqual(['a', 'b']);
    expect(ids({ tags: ['v2', 'canary'] })).toEqual(['a']);
    expect(ids({ tags: ['canary'], status: 'all' })).toEqual(['a', 'c']);
  });

  it('combines zone, metadata and tags', () => {
    expect(ids({ zone: 'z1', status: 'all' })).toEqual(['a', 'c', 'd']);
    expect(ids({ metadata: [['version', '2']] })).toEqual(['a', 'b']);
    expect(ids({ metadata: [['version', '2'], ['tier', 'gold']], zone: 'z1', tags: ['canary'] })).toEqual(['a']);
    expect(ids({ metadata: [['version', '2'], ['version', '3']] })).toEqual([]);
    expect(ids({ zone: 'z9' })).toEqual([]);
  });

  it('does not match inherited properties as metadata', () => {
    expect(ids({ metadata: [['constructor', 'x']] })).toEqual([]);
    expect(ids({ metadata: [['toString', '']], status: 'all' })).toEqual([]);
  });
});
