import { InvalidRequestError } from '@app/registry';
import { loadGatewayConfig } from '../config/gateway-config';
import { ParseResolveQueryPipe } from './resolve-query.pipe';

describe('ParseResolveQueryPipe', () => {
  const pipe = new ParseResolveQueryPipe();

  it('turns single and repeated parameters into a filter', () => {
    expect(pipe.transform({})).toEqual({});
    expect(pipe.transform({ tag: 'a', zone: 'z1', meta: 'version=2', status: 'draining' })).toEqual({
      tags: ['a'],
      zone: 'z1',
      metadata: [['version', '2']],
      status: 'DRAINING',
    });
    expect(pipe.transform({ tag: ['a', 'b'], meta: ['k=v=w', 'e='], status: 'ALL' })).toEqual({
      tags: ['a', 'b'],
      metadata: [
        ['k', 'v=w'],
        ['e', ''],
      ],
      status: 'all',
    });
  });

  it.each([
    [{ status: 'SLEEPING' }, 'status'],
    [{ meta: 'novalue' }, 'meta'],
    [{ meta: '=v' }, 'meta'],
    [{ zone: ['a', 'b'] }, 'zone'],
    [{ zone: '../x' }, 'zone'],
    [{ tag: '' }, 'tag'],
    [{ colour: 'red' }, 'colour'],
  ])('rejects %p naming %s', (query, field) => {
    try {
      pipe.transform(query);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect((err as InvalidRequestError).field).toBe(field);
    }
  });
});

describe('CACHE_* configuration', () => {
  it('has safe defaults', () => {
    expect(loadGatewayConfig({})).toMatchObject({
      CACHE_TTL_MS: 30_000,
      CACHE_STALE_AFTER_MS: 3_000,
      CACHE_NEGATIVE_TTL_MS: 5_000,
      CACHE_L2_TTL_MS: 600_000,
      CACHE_LOCK_TTL_MS: 5_000,
      CACHE_BACKOFF_MIN_MS: 1_000,
      CACHE_BACKOFF_MAX_MS: 30_000,
    });
  });

  it.each([
    ['CACHE_TTL_MS', '10'],
    ['CACHE_NEGATIVE_TTL_MS', 'soon'],
    ['CACHE_LOCK_TTL_MS', '0'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadGatewayConfig({ [name]: value })).toThrow(new RegExp(`^invalid ${name}:`));
  });
});
