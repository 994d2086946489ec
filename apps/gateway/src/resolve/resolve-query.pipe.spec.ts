import { InvalidRequestError } from '@app/registry';
import { loadGatewayConfig } from '../config/gateway-config';
import { DEFAULT_WAIT_MS, ParseBlockingQueryPipe, ParseResolveQueryPipe } from './resolve-query.pipe';

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

describe('ParseBlockingQueryPipe', () => {
  const pipe = new ParseBlockingQueryPipe();

  it('reads index and wait (default 60 s, at most 10 min); no index means no blocking', () => {
    expect(pipe.transform(undefined)).toBeUndefined();
    expect(pipe.transform({ tag: 'a' })).toBeUndefined();
    expect(pipe.transform({ wait: '5s' })).toBeUndefined();
    expect(pipe.transform({ index: '1042' })).toEqual({ index: 1042, waitMs: DEFAULT_WAIT_MS });
    expect(pipe.transform({ index: '0', wait: '250ms' })).toEqual({ index: 0, waitMs: 250 });
    expect(pipe.transform({ index: '7', wait: '30s' })).toEqual({ index: 7, waitMs: 30_000 });
    expect(pipe.transform({ index: '7', wait: '10m' })).toEqual({ index: 7, waitMs: 600_000 });
    expect(pipe.transform({ index: '7', wait: '0s' })).toEqual({ index: 7, waitMs: 0 });
  });

  it('lets the filter pipe accept index and wait on the same query', () => {
    expect(new ParseResolveQueryPipe().transform({ index: '5', wait: '1s', zone: 'z1' })).toEqual({ zone: 'z1' });
  });

  it.each([
    [{ index: '-1' }, 'index'],
    [{ index: '12a' }, 'index'],
    [{ index: '' }, 'index'],
    [{ index: '1e3' }, 'index'],
    [{ index: '99999999999999999' }, 'index'],
    [{ index: ['1', '2'] }, 'index'],
    [{ index: '1', wait: '5' }, 'wait'],
    [{ index: '1', wait: '5h' }, 'wait'],
    [{ index: '1', wait: '11m' }, 'wait'],
    [{ index: '1', wait: '-5s' }, 'wait'],
    [{ index: '1', wait: '1.5s' }, 'wait'],
    [{ index: '1', wait: ['1s', '2s'] }, 'wait'],
    [{ wait: 'soon' }, 'wait'],
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

describe('MAX_BLOCKING_QUERIES configuration', () => {
  it('defaults to 5000 and rejects non-positive values naming the variable', () => {
    expect(loadGatewayConfig({}).MAX_BLOCKING_QUERIES).toBe(5_000);
    expect(() => loadGatewayConfig({ MAX_BLOCKING_QUERIES: '0' })).toThrow(/^invalid MAX_BLOCKING_QUERIES:/);
  });
});

describe('STALE_AFTER_MS configuration', () => {
  it('defaults to 3 s and rejects values below 500 ms naming the variable', () => {
    expect(loadGatewayConfig({}).STALE_AFTER_MS).toBe(3_000);
    expect(() => loadGatewayConfig({ STALE_AFTER_MS: '10' })).toThrow(/^invalid STALE_AFTER_MS:/);
    expect(() => loadGatewayConfig({ STALE_AFTER_MS: 'soon' })).toThrow(/^invalid STALE_AFTER_MS:/);
  });
});
