import { ClosedError, RequestRejectedError } from './errors';
import { InstanceRegistration, RegistrationOptions } from './registration';
import { rendezvousOrder } from './rendezvous';
import { connectionRefused, fakeTransport, Handler, response } from './testing/fake-transport';

const BASE = '/v1/services/payments/instances/pod-1';
const A = 'http://gw-a:8080';
const B = 'http://gw-b:8080';

function registration(handler: Handler, overrides: Partial<RegistrationOptions> = {}) {
  const transport = fakeTransport(handler);
  const handle = new InstanceRegistration({
    gateways: [A],
    token: 'secret-token-123',
    service: 'payments',
    id: 'pod-1',
    address: '10.0.0.1',
    port: 8080,
    ttl: 30,
    random: () => 0.5,
    transport,
    ...overrides,
  });
  const events: string[] = [];
  for (const name of ['registered', 'heartbeat', 'heartbeat-failed', 'reregistered', 'failover', 'deregistered'] as const) {
    handle.on(name, () => events.push(name));
  }
  return { handle, transport, events, routes: () => transport.sent.map((r) => `${r.gateway} ${r.route}`) };
}

const ok: Handler = (r) => response(r.method === 'PUT' && !r.route.endsWith('/heartbeat') ? 201 : 204, r.method === 'PUT' && !r.route.endsWith('/heartbeat') ? {} : '');

beforeEach(() => jest.useFakeTimers({ now: 0 }));
afterEach(() => jest.useRealTimers());

describe('heartbeat schedule', () => {
  it.each([
    [0, 10_000],
    [0.5, 9_000],
    [1, 8_000],
  ])('heartbeats every TTL/3 shortened by up to 20 %% jitter (random %p -> %p ms)', async (random, period) => {
    const { handle, transport } = registration(ok, { random: () => random });
    await handle.start();
    await jest.advanceTimersByTimeAsync(period * 5 + 1);
    const beats = transport.sent.filter((r) => r.route.endsWith('/heartbeat')).map((r) => r.at);
    expect(beats).toEqual([1, 2, 3, 4, 5].map((n) => n * period));
    await handle.close();
  });

  it('registers with the given fields and the bearer token, then heartbeats through the same gateway', async () => {
    const { handle, transport, events } = registration(ok, { tags: ['canary'], zone: 'z1', metadata: { v: '1' } });
    await handle.start();
    await jest.advanceTimersByTimeAsync(9_001);
    const [put, beat] = transport.sent;
    expect(put.route).toBe(`PUT ${BASE}`);
    expect(JSON.parse(put.body!)).toEqual({ address: '10.0.0.1', port: 8080, ttl: 30, metadata: { v: '1' }, tags: ['canary'], zone: 'z1' });
    expect(put.headers.authorization).toBe('Bearer secret-token-123');
    expect(beat.route).toBe(`PUT ${BASE}/heartbeat`);
    expect(events).toEqual(['registered', 'heartbeat']);
    expect(handle.state).toBe('registered');
    await handle.close();
  });
});

describe('robustness', () => {
  it('keeps its schedule when an event listener throws (a warning, not a failed heartbeat)', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { handle, transport, events } = registration(ok);
    handle.on('heartbeat', () => {
      throw new Error('listener bug');
    });
    await handle.start();
    await jest.advanceTimersByTimeAsync(9_000 * 3 + 1);
    expect(transport.sent.filter((r) => r.route.endsWith('/heartbeat'))).toHaveLength(3);
    expect(events).not.toContain('heartbeat-failed');
    expect(warn).toHaveBeenCalledTimes(3);
    warn.mockRestore();
    await handle.close();
  });
});

describe('re-registration', () => {
  it('registers again when a heartbeat answers 404, and keeps heartbeating', async () => {
    let known = true;
    const { handle, routes, events } = registration((r) => {
      if (r.route.endsWith('/heartbeat')) return response(known ? 204 : 404, known ? '' : { error: 'not_found' });
      if (r.method === 'DELETE') return response(204);
      known = true;
      return response(201, {});
    });
    await handle.start();
    known = false;
    await jest.advanceTimersByTimeAsync(9_001 * 2);
    expect(routes()).toEqual([`${A} PUT ${BASE}`, `${A} PUT ${BASE}/heartbeat`, `${A} PUT ${BASE}`, `${A} PUT ${BASE}/heartbeat`]);
    expect(events).toEqual(['registered', 'reregistered', 'heartbeat']);
    await handle.close();
  });
});

describe('backoff', () => {
  it('waits at least Retry-After after a 429 on registration, and does not ask again meanwhile', async () => {
    let limited = true;
    const { handle, transport } = registration((r) => (limited ? response(429, { error: 'rate_limited' }, { 'retry-after': '7' }) : ok(r)));
    const started = handle.start();
    await jest.advanceTimersByTimeAsync(6_999);
    expect(transport.sent).toHaveLength(1);
    limited = false;
    await jest.advanceTimersByTimeAsync(2);
    await started;
    expect(transport.sent.map((r) => r.at)).toEqual([0, 7_000]);
    await handle.close();
  });

  it('honours a 503 Retry-After longer than the heartbeat interval: no request to that gateway before it', async () => {
    let overloaded = false;
    const { handle, transport, events } = registration((r) => (overloaded && r.route.endsWith('/heartbeat') ? response(503, { error: 'overloaded' }, { 'retry-after': '20' }) : ok(r)));
    await handle.start();
    overloaded = true;
    await jest.advanceTimersByTimeAsync(9_000); // first heartbeat: 503, Retry-After 20 s
    await jest.advanceTimersByTimeAsync(19_999);
    const beats = transport.sent.filter((r) => r.route.endsWith('/heartbeat')).map((r) => r.at);
    expect(beats).toEqual([9_000]);
    overloaded = false;
    await jest.advanceTimersByTimeAsync(10_000);
    const after = transport.sent.filter((r) => r.route.endsWith('/heartbeat')).map((r) => r.at);
    expect(after.length).toBeGreaterThan(1);
    expect(after[1]).toBeGreaterThanOrEqual(29_000);
    expect(events).toContain('heartbeat-failed');
    expect(handle.state).toBe('registered');
    await handle.close();
  });

  it('retries the first registration with growing pauses while no gateway answers, then resolves', async () => {
    let down = true;
    const { handle, transport } = registration((r) => (down ? connectionRefused() : ok(r)));
    const started = handle.start();
    await jest.advanceTimersByTimeAsync(10_000);
    const attempts = transport.sent.map((r) => r.at);
    // Exponential (500 ms doubling, capped at the 10 s interval), never a tight loop.
    expect(attempts.length).toBeGreaterThanOrEqual(4);
    expect(attempts.length).toBeLessThanOrEqual(7);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThanOrEqual(gaps[i - 1]);
    down = false;
    await jest.advanceTimersByTimeAsync(10_000);
    await expect(started).resolves.toBe(handle);
    await handle.close();
  });

  it('rejects start() when the gateway refuses the registration (403), without the token in the message', async () => {
    const { handle } = registration(() => response(403, { error: 'forbidden', message: 'token "agent" may not register payments' }));
    const err = await handle.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestRejectedError);
    expect((err as RequestRejectedError).status).toBe(403);
    expect(String((err as Error).message)).not.toContain('secret-token-123');
    expect(handle.state).toBe('closed');
  });
});

describe('failover', () => {
  const key = 'payments/pod-1';
  const [preferred, other] = rendezvousOrder(key, [A, B]);

  it('sticks to the rendezvous-preferred gateway, moves to the next in the same heartbeat when it fails, and goes back when it answers', async () => {
    let preferredUp = true;
    const { handle, routes, transport } = registration((r) => (r.gateway === preferred && !preferredUp ? connectionRefused() : ok(r)), { gateways: [A, B] });
    const failovers: Array<{ from: string; to: string }> = [];
    handle.on('failover', (e) => failovers.push(e));
    const failed = jest.fn();
    handle.on('heartbeat-failed', failed);
    await handle.start();
    expect(handle.gateway).toBe(preferred);
    await jest.advanceTimersByTimeAsync(9_000);
    preferredUp = false;
    await jest.advanceTimersByTimeAsync(9_000);
    // The one heartbeat of that interval tried the preferred gateway, then the other at once.
    expect(routes().slice(-2)).toEqual([`${preferred} PUT ${BASE}/heartbeat`, `${other} PUT ${BASE}/heartbeat`]);
    expect(transport.sent.slice(-1)[0].at).toBe(18_000);
    expect(handle.gateway).toBe(other);
    expect(failovers).toEqual([{ from: preferred, to: other }]);
    preferredUp = true;
    await jest.advanceTimersByTimeAsync(9_000);
    expect(handle.gateway).toBe(preferred);
    expect(failovers).toEqual([
      { from: preferred, to: other },
      { from: other, to: preferred },
    ]);
    expect(failed).not.toHaveBeenCalled();
    await handle.close();
  });

  it('moves on when a gateway answers 5xx, and reports a failed heartbeat only when every gateway failed', async () => {
    let down = false;
    const { handle, events } = registration((r) => (down ? response(502, 'bad gateway') : ok(r)), { gateways: [A, B] });
    await handle.start();
    down = true;
    await jest.advanceTimersByTimeAsync(9_000);
    expect(events.filter((e) => e === 'heartbeat-failed')).toHaveLength(1);
    expect(handle.state).toBe('failing');
    down = false;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(handle.state).toBe('registered');
    await handle.close();
  });
});

describe('close', () => {
  it('waits for the heartbeat in flight, then deregisters; nothing is sent after the DELETE', async () => {
    let release: () => void = () => undefined;
    const { handle, routes, events } = registration((r) => {
      if (r.route.endsWith('/heartbeat')) return new Promise((resolve) => (release = () => resolve(response(204)))) as never;
      return ok(r);
    });
    await handle.start();
    await jest.advanceTimersByTimeAsync(9_000); // heartbeat sent, no answer yet
    const closed = handle.close();
    await jest.advanceTimersByTimeAsync(100);
    expect(routes().at(-1)).toBe(`${A} PUT ${BASE}/heartbeat`);
    release();
    await closed;
    expect(routes().slice(-2)).toEqual([`${A} PUT ${BASE}/heartbeat`, `${A} DELETE ${BASE}`]);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(routes().at(-1)).toBe(`${A} DELETE ${BASE}`);
    expect(events.at(-1)).toBe('deregistered');
    expect(handle.state).toBe('closed');
    expect(handle.close()).toBe(closed);
  });

  it('deregisters through the next gateway when its own is down', async () => {
    const [preferred, other] = rendezvousOrder('payments/pod-1', [A, B]);
    let down = false;
    const { handle, routes } = registration((r) => (down && r.gateway === preferred ? connectionRefused() : ok(r)), { gateways: [A, B] });
    await handle.start();
    down = true;
    await handle.close();
    expect(routes().slice(-1)).toEqual([`${other} DELETE ${BASE}`]);
  });

  it('deregisters even while every gateway is paused after failed heartbeats', async () => {
    let down = false;
    const { handle, routes, events } = registration((r) => (down ? connectionRefused() : ok(r)), { gateways: [A, B] });
    await handle.start();
    down = true;
    await jest.advanceTimersByTimeAsync(9_000); // both gateways fail and are paused
    expect(events).toContain('heartbeat-failed');
    down = false;
    await handle.close();
    expect(routes().at(-1)).toMatch(/ DELETE /);
    expect(events.at(-1)).toBe('deregistered');
  });

  it('ends a start() that is still retrying with ClosedError and sends nothing more', async () => {
    const { handle, transport } = registration(() => connectionRefused());
    const started = handle.start().catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(1_000);
    const sent = transport.sent.length;
    await handle.close();
    expect(await started).toBeInstanceOf(ClosedError);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(transport.sent).toHaveLength(sent);
  });
});
