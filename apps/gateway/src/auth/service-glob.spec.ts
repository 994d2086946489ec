import { compileServiceGlobs } from './service-glob';

describe('compileServiceGlobs', () => {
  it('matches `*` as any run and `?` as exactly one character', () => {
    const matches = compileServiceGlobs(['payments-*', 'team-?.api']);
    expect(['payments-', 'payments-eu', 'payments-eu.v2', 'team-a.api'].map(matches)).toEqual([true, true, true, true]);
    expect(['payments', 'xpayments-eu', 'team-ab.api', 'team-.api', 'team-aXapi'].map(matches)).toEqual([false, false, false, false, false]);
  });

  it('treats `.` and `-` literally', () => {
    const matches = compileServiceGlobs(['a.b']);
    expect(matches('a.b')).toBe(true);
    expect(matches('aXb')).toBe(false);
  });

  it('never matches a name that could not be a service, even with `*`', () => {
    const matches = compileServiceGlobs(['*']);
    expect(matches('payments')).toBe(true);
    for (const bad of ['', '../x', 'a/b', '.hidden', 'x'.repeat(129), 'sp ace']) expect(matches(bad)).toBe(false);
  });

  it('matches nothing without globs', () => {
    expect(compileServiceGlobs([])('payments')).toBe(false);
  });

  it.each(['a/b', '', 'a b', '[ab]', 'a{b,c}', 'x'.repeat(129)])('rejects the glob %p', (glob) => {
    expect(() => compileServiceGlobs([glob])).toThrow(/invalid service glob/);
  });
});
