import { GatewaysUnavailableError, RequestRejectedError } from './errors';
import { Resolution, Resolver, ResolverOptions } from './resolver';
import { connectionRefused, fakeTransport, Handler, response } from './testing/fake-transport';
import { Instance } from './types';

const A = 'http://gw-a:8080';
const B = 'http://gw-b:8080';
const pod = (id: string): Instance => ({ id, address: '10.0.0.1', port: 80, metadata: {}, tags: [], weight: 100, status: 'UP' });
const answer = (instances: Instance[], headers: Record<string, string> = {}, stale = false) =>
  response(200, { service: 'payments', revision: '7', stale, instances }, headers);

function setup(handler: Handler, overrides: Partial<ResolverOptions> = {}) {
  const transport = fakeTransport(handler);
  const resolver = new Resolver({ gateways: [A], token: 'reader-token', random: () => 0.5, transport, ...overrides });
  return { resolver, transport };
}

beforeEach(() => jest.useFakeTimers({ now: 0 }));
afterEach(() => jest.useRealTimers());

describe('get', () => {
  it('sends the filters as the REST API has them, with the token', async () => {
    const { resolver, transport } = setup(() => answer([pod('a')]));
    const result = await resolver.get('payments', { tags: ['canary', 'blue'], zone: 'z1', meta: { version: '1.2=3' }, status: 'all' });
    expect(result).toMatchObject({ service: 'payments', revision: '7', stale: false, unreachable: false, gateway: A });
    expect(result.instances.map((i) => i.id)).toEqual(['a']);
    const url = new URL(transport.sent[0].url);
    expect(url.pathname).toBe('/v1/services/payments');
    expect(url.searchParams.getAll('tag')).toEqual(['blue', 'canary']);
    expect(url.searchParams.get('zone')).toBe('z1');
    expect(url.searchParams.getAll('meta')).toEqual(['version=1.2=3']);
    expect(url.searchParams.get('status')).toBe('all');
    expect(transport.sent[0].headers.authorization).toBe('Bearer reader-token');
  });

  it('keeps the last good answer, marked stale, when every gateway is unreachable', async () => {
    let up = true;
    const { resolver } = setup(() => (up ? answer([pod('a'), pod('b')]) : connectionRefused()), { gateways: [A, B] });
    await resolver.get('payments');
    up = false;
    const kept = await resolver.get('payments');
    expect(kept.instances.map((i) => i.id)).toEqual(['a', 'b']);
    expect(kept).toMatchObject({ stale: true, unreachable: true });
    // Another filter has no previous answer: an error, never an empty list.
    await expect(resolver.get('payments', { zone: 'z9' })).rejects.toBeInstanceOf(GatewaysUnavailableError);
  });

  it('treats a 5xx like an unreachable gateway and a 4xx as the caller\'s error', async () => {
    let status = 200;
    const { resolver } = setup(() => (status === 200 ? answer([pod('a')]) : response(status, { error: 'x', field: 'tag' })));
    await resolver.get('payments');
    status = 503;
    expect((await resolver.get('payments')).stale).toBe(true);
    status = 400;
    await jest.advanceTimersByTimeAsync(1_000); // the 503 paused the gateway briefly
    await expect(resolver.get('payments')).rejects.toBeInstanceOf(RequestRejectedError);
  });

  it('pick() applies a strategy to the current answer', async () => {
    const { resolver } = setup(() => answer([pod('a'), pod('b')]));
    const picked = [];
    for (let i = 0; i < 4; i++) picked.push((await resolver.pick('payments'))?.id);
    expect(picked).toEqual(['a', 'b', 'a', 'b']);
  });
});

describe('watch', () => {
  it('polls every few seconds while the gateway sends no X-Registry-Index, and reports changes only', async () => {
    let instances = [pod('a')];
    const { resolver, transport } = setup(() => answer(instances), { pollIntervalMs: 3000 });
    const seen: string[][] = [];
    const watch = resolver.watch('payments', (r) => seen.push(r.instances.map((i) => i.id)));
    await jest.advanceTimersByTimeAsync(6_001);
    instances = [pod('a'), pod('b')];
    await jest.advanceTimersByTimeAsync(3_000);
    expect(seen).toEqual([['a'], ['a', 'b']]);
    expect(transport.sent.map((r) => r.at)).toEqual([0, 3000, 6000, 9000]);
    expect(transport.sent.every((r) => !new URL(r.url).searchParams.has('index'))).toBe(true);
    expect(watch.mode).toBe('polling');
    await watch.close();
  });

  it('switches to blocking queries once the gateway answers with X-Registry-Index', async () => {
    let index = 10;
    let hold: (() => void) | undefined;
    const { resolver, transport } = setup(
      (r) => {
        const asked = new URL(r.url).searchParams.get('index');
        if (asked === String(index)) return new Promise((resolve) => (hold = () => resolve(answer([pod('a'), pod('b')], { 'x-registry-index': String(++index) })))) as never;
        return answer([pod('a')], { 'x-registry-index': String(index) });
      },
      { waitMs: 30_000 },
    );
    const seen: Resolution[] = [];
    const watch = resolver.watch('payments', (r) => seen.push(r), { status: 'UP' });
    await jest.advanceTimersByTimeAsync(10);
    const blocking = new URL(transport.sent[1].url).searchParams;
    expect(blocking.get('index')).toBe('10');
    expect(blocking.get('wait')).toBe('30000ms');
    expect(blocking.get('status')).toBe('UP');
    expect(transport.sent[1].timeoutMs).toBeGreaterThan(30_000);
    hold!();
    await jest.advanceTimersByTimeAsync(10);
    expect(seen.map((r) => r.instances.length)).toEqual([1, 2]);
    expect(seen[1].index).toBe('11');
    expect(watch.mode).toBe('blocking');
    // The next query asks from the new index at once; no polling delay in between.
    expect(new URL(transport.sent[2].url).searchParams.get('index')).toBe('11');
    expect(transport.sent).toHaveLength(3);
    // close() aborts the held query.
    await watch.close();
    expect(transport.sent[2].signal?.aborted).toBe(true);
  });

  it('does not turn an index answered at once without change into a request loop', async () => {
    const { resolver, transport } = setup(() => answer([pod('a')], { 'x-registry-index': '5' }));
    const watch = resolver.watch('payments', () => undefined);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(transport.sent.length).toBeLessThanOrEqual(12);
    await watch.close();
  });

  it('falls back to polling when a gateway rejects index/wait (an older gateway)', async () => {
    let old = false;
    const { resolver, transport } = setup((r) => {
      if (old && new URL(r.url).searchParams.has('index')) return response(400, { error: 'invalid_request', field: 'index' });
      return old ? answer([pod('a')]) : answer([pod('a')], { 'x-registry-index': '3' });
    });
    const watch = resolver.watch('payments', () => undefined);
    await jest.advanceTimersByTimeAsync(0);
    old = true;
    const switchedAt = transport.sent.length;
    await jest.advanceTimersByTimeAsync(11_000);
    const after = transport.sent.slice(switchedAt).map((r) => new URL(r.url).searchParams.has('index'));
    // One rejected blocking query, then plain polls.
    expect(after[0]).toBe(true);
    expect(after.slice(1).length).toBeGreaterThanOrEqual(3);
    expect(after.slice(1).every((hasIndex) => !hasIndex)).toBe(true);
    expect(watch.mode).toBe('polling');
    expect(watch.current?.stale).toBe(false);
    await watch.close();
  });

  it('keeps the last answer with stale: true while every gateway is down, and recovers by itself', async () => {
    let up = true;
    const { resolver, transport } = setup(() => (up ? answer([pod('a'), pod('b')]) : connectionRefused()), { gateways: [A, B], pollIntervalMs: 1000, maxBackoffMs: 4000 });
    const seen: Resolution[] = [];
    const watch = resolver.watch('payments', (r) => seen.push(r));
    await jest.advanceTimersByTimeAsync(100);
    up = false;
    await jest.advanceTimersByTimeAsync(30_000);
    expect(seen.map((r) => [r.instances.length, r.stale, r.unreachable])).toEqual([
      [2, false, false],
      [2, true, true],
    ]);
    expect(watch.stale).toBe(true);
    expect((await resolver.get('payments')).instances).toHaveLength(2);
    // Backing off: far fewer than one attempt per gateway per poll interval.
    const during = transport.sent.filter((r) => r.at > 100 && r.at <= 30_100);
    expect(during.length).toBeLessThan(30);
    up = true;
    await jest.advanceTimersByTimeAsync(5_000);
    expect(seen.at(-1)).toMatchObject({ stale: false, unreachable: false });
    expect(watch.stale).toBe(false);
    await watch.close();
  });

  it('asks without an index after an outage, so a gateway whose content did not change answers at once', async () => {
    let up = true;
    const { resolver, transport } = setup(() => (up ? answer([pod('a')], { 'x-registry-index': '10' }) : connectionRefused()), { pollIntervalMs: 1000, maxBackoffMs: 2000 });
    const watch = resolver.watch('payments', () => undefined);
    await jest.advanceTimersByTimeAsync(100);
    up = false;
    await jest.advanceTimersByTimeAsync(5_000);
    const sentBefore = transport.sent.length;
    up = true;
    await jest.advanceTimersByTimeAsync(3_000);
    expect(new URL(transport.sent[sentBefore].url).searchParams.has('index')).toBe(false);
    expect(watch.stale).toBe(false);
    await watch.close();
  });

  it('backs off as told when a gateway has too many held queries (429)', async () => {
    let limited = false;
    const { resolver, transport } = setup(() => (limited ? response(429, { error: 'rate_limited' }, { 'retry-after': '8' }) : answer([pod('a')], { 'x-registry-index': '1' })));
    const watch = resolver.watch('payments', () => undefined);
    await jest.advanceTimersByTimeAsync(0);
    limited = true;
    await jest.advanceTimersByTimeAsync(1_000);
    const limitedAt = transport.sent.at(-1)!.at;
    await jest.advanceTimersByTimeAsync(7_900);
    expect(transport.sent.at(-1)!.at).toBe(limitedAt);
    expect(watch.current?.instances).toHaveLength(1);
    await watch.close();
  });

  it('serves get() from a live watch without a request', async () => {
    const { resolver, transport } = setup(() => answer([pod('a')]));
    const watch = resolver.watch('payments', () => undefined);
    await jest.advanceTimersByTimeAsync(10);
    const before = transport.sent.length;
    expect((await resolver.get('payments')).instances).toHaveLength(1);
    expect(transport.sent).toHaveLength(before);
    await watch.close();
  });

  it('never calls the listener with an empty list because of an error; the first failure goes to onError', async () => {
    const { resolver } = setup(() => connectionRefused());
    const listener = jest.fn();
    const onError = jest.fn();
    const watch = resolver.watch('payments', listener, {}, { onError });
    await jest.advanceTimersByTimeAsync(5_000);
    expect(listener).not.toHaveBeenCalled();
    expect(onError).toHaveBeenCalled();
    expect(onError.mock.calls[0][0]).toBeInstanceOf(GatewaysUnavailableError);
    await watch.close();
  });
});
