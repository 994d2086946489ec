import { requestIdGenerator } from './request-ids';

describe('requestIdGenerator', () => {
  it('numbers requests after a per-process random prefix', () => {
    const next = requestIdGenerator('abcd0123');
    expect([next(), next(), next()]).toEqual(['abcd0123-1', 'abcd0123-2', 'abcd0123-3']);
  });

  it('gives two processes (generators) different prefixes', () => {
    const a = requestIdGenerator()();
    const b = requestIdGenerator()();
    expect(a).toMatch(/^[0-9a-f]{8}-1$/);
    expect(a).not.toBe(b);
  });
});
