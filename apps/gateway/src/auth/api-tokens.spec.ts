import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiTokens, loadApiTokens, sha256 } from './api-tokens';

const SECRET = 'agent-secret-0123456789';
const READER_SECRET = 'reader-secret-0123456789';

const file = (tokens: unknown[]) => JSON.stringify({ tokens });
const parse = (text: string) => ApiTokens.parse(text, 'tokens.json');

describe('ApiTokens', () => {
  const tokens = parse(
    file([
      { name: 'payments-agent', token: SECRET, role: 'agent', services: ['payments-*'] },
      { name: 'dashboards', sha256: sha256(READER_SECRET).toString('hex'), role: 'reader' },
      { name: 'ops', token: 'admin-secret-0123456789', role: 'admin' },
    ]),
  );

  it('recognises plain and sha256 entries by the presented token', () => {
    expect(tokens.verify(SECRET)?.name).toBe('payments-agent');
    expect(tokens.verify(READER_SECRET)?.role).toBe('reader');
    expect(tokens.verify('admin-secret-0123456789')?.role).toBe('admin');
  });

  it('refuses unknown, empty and near-miss tokens', () => {
    for (const wrong of ['', 'x', SECRET.slice(0, -1), `${SECRET}x`, SECRET.toUpperCase(), sha256(READER_SECRET).toString('hex')]) {
      expect(tokens.verify(wrong)).toBeUndefined();
    }
  });

  it('keeps no plain token, only digests', () => {
    expect(JSON.stringify(tokens)).not.toContain(SECRET);
  });

  it('scopes agents to their globs and lets readers and admins cover every service', () => {
    expect(tokens.verify(SECRET)!.coversService('payments-eu')).toBe(true);
    expect(tokens.verify(SECRET)!.coversService('billing')).toBe(false);
    expect(tokens.verify(READER_SECRET)!.coversService('billing')).toBe(true);
  });

  it.each([
    ['not JSON', '{"tokens": [', /not valid JSON/],
    ['no tokens', file([]), /tokens: must list at least one token/],
    ['a wrong top-level key', '{"token": []}', /tokens: Invalid input: expected array/],
    ['a typo in a field', file([{ name: 'a', token: SECRET, role: 'admin', service: ['x'] }]), /tokens\[0\]: Unrecognized key: "service"/],
    ['an unknown role', file([{ name: 'a', token: SECRET, role: 'root' }]), /tokens\[0\]\.role: Invalid option/],
    ['a short token', file([{ name: 'a', token: 'short', role: 'admin' }]), /tokens\[0\]\.token: must be at least 16 characters/],
    ['a token with spaces', file([{ name: 'a', token: 'has spaces in it, sadly', role: 'admin' }]), /tokens\[0\]\.token: must be printable ASCII/],
    ['a bad sha256', file([{ name: 'a', sha256: 'abc', role: 'admin' }]), /tokens\[0\]\.sha256: must be 64 hex digits/],
    ['both token and sha256', file([{ name: 'a', token: SECRET, sha256: sha256(SECRET).toString('hex'), role: 'admin' }]), /exactly one of "token" or "sha256"/],
    ['neither token nor sha256', file([{ name: 'a', role: 'admin' }]), /exactly one of "token" or "sha256"/],
    ['an agent without services', file([{ name: 'a', token: SECRET, role: 'agent' }]), /tokens\[0\]\.services: an agent token needs "services"/],
    ['an agent with no globs', file([{ name: 'a', token: SECRET, role: 'agent', services: [] }]), /tokens\[0\]\.services: must list at least one/],
    ['services on a reader', file([{ name: 'a', token: SECRET, role: 'reader', services: ['x'] }]), /applies to agent tokens only/],
    ['a bad glob', file([{ name: 'a', token: SECRET, role: 'agent', services: ['a/b'] }]), /tokens\[0\]\.services\[0\]: must be a glob/],
    ['a bad name', file([{ name: '../a', token: SECRET, role: 'admin' }]), /tokens\[0\]\.name: must be 1-64 characters/],
    [
      'a duplicate name',
      file([
        { name: 'a', token: SECRET, role: 'admin' },
        { name: 'a', token: READER_SECRET, role: 'reader' },
      ]),
      /tokens\[1\]\.name: duplicate token name "a"/,
    ],
    [
      'one token under two names',
      file([
        { name: 'a', token: SECRET, role: 'admin' },
        { name: 'b', sha256: sha256(SECRET).toString('hex'), role: 'reader' },
      ]),
      /"b" has the same token as "a"/,
    ],
  ])('rejects %s, naming AUTH_TOKENS_FILE and never a token', (_what, text, problem) => {
    let message = '';
    try {
      parse(text);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^AUTH_TOKENS_FILE \(tokens\.json\): /);
    expect(message).toMatch(problem);
    for (const secret of [SECRET, READER_SECRET, 'short', 'has spaces']) expect(message).not.toContain(secret);
  });

  it('does not quote the file in a JSON syntax error', () => {
    expect(() => parse(`{"tokens":[{"name":"a","token":"${SECRET}" "role":"admin"}]}`)).toThrow(/^AUTH_TOKENS_FILE \(tokens\.json\): not valid JSON( \(at character \d+\))?$/);
  });
});

describe('loadApiTokens', () => {
  it('refuses to run without AUTH_TOKENS_FILE unless AUTH_DISABLED=true', () => {
    expect(() => loadApiTokens({ AUTH_DISABLED: false })).toThrow(/AUTH_TOKENS_FILE is not set.*AUTH_DISABLED=true/);
    expect(loadApiTokens({ AUTH_DISABLED: true })).toBeUndefined();
  });

  it('refuses a token file together with AUTH_DISABLED=true', () => {
    expect(() => loadApiTokens({ AUTH_DISABLED: true, AUTH_TOKENS_FILE: '/x' })).toThrow(/both set/);
  });

  it('reads the file, and names it when it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokens-'));
    const path = join(dir, 'tokens.json');
    writeFileSync(path, file([{ name: 'ops', token: SECRET, role: 'admin' }]));
    expect(loadApiTokens({ AUTH_DISABLED: false, AUTH_TOKENS_FILE: path })!.verify(SECRET)?.name).toBe('ops');
    expect(() => loadApiTokens({ AUTH_DISABLED: false, AUTH_TOKENS_FILE: join(dir, 'missing.json') })).toThrow(/^AUTH_TOKENS_FILE: cannot read .*missing\.json: ENOENT$/);
    rmSync(dir, { recursive: true, force: true });
  });
});
