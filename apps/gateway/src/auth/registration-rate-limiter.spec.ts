import { loadGatewayConfig } from '../config/gateway-config';
import { RegistrationRateLimiter } from './registration-rate-limiter';

describe('RegistrationRateLimiter', () => {
  it('gives each token its own burst, then the rate, with a Retry-After', () => {
    let now = 0;
    const limiter = new RegistrationRateLimiter(2, 3, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take('a').allowed)).toEqual([true, true, true, false]);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.take('b').allowed).toBe(true);
    now += 500;
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('rounds Retry-After up to whole seconds for slow rates', () => {
    const limiter = new RegistrationRateLimiter(0.1, 1, () => 0);
    limiter.take('a');
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 10 });
  });

  it('is off with a rate of 0', () => {
    const limiter = new RegistrationRateLimiter(0, 1, () => 0);
    expect(Array.from({ length: 100 }, () => limiter.take('a').allowed).every(Boolean)).toBe(true);
  });
});

describe('RATE_LIMIT_REGISTRATIONS_* configuration', () => {
  it('is generous by default', () => {
    expect(loadGatewayConfig({})).toMatchObject({ RATE_LIMIT_REGISTRATIONS_PER_SECOND: 200, RATE_LIMIT_REGISTRATIONS_BURST: 2000 });
  });

  it.each([
    ['RATE_LIMIT_REGISTRATIONS_PER_SECOND', '-1'],
    ['RATE_LIMIT_REGISTRATIONS_PER_SECOND', 'many'],
    ['RATE_LIMIT_REGISTRATIONS_BURST', '0'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadGatewayConfig({ [name]: value })).toThrow(new RegExp(`^invalid ${name}:`));
  });
});
