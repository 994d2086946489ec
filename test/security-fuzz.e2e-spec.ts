/**
 * Issue 7 fuzzing: thousands of generated bad REST requests (names with traversal and encoded
 * slashes, bodies with wrong types, out-of-range and huge values, extra fields, garbage and oversize
 * payloads, missing or wrong tokens). The gateway must answer every one with a 4xx JSON error, stay
 * up, and leave etcd without a single key, inside its prefix or outside.
 */
import fc from 'fast-check';
import { isValidName } from '@app/registry';
import { etcdAdmin } from './support/etcd-admin';
import { useSecuredGateway, validRegistration } from './support/security';
import { HttpRequest, HttpResponse, rawRequest } from './support/http';

jest.setTimeout(180_000);

// ---- names ----------------------------------------------------------------------------------
const validName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,15}$/);
const badName = fc.oneof(
  fc.constantFrom('', '.', '..', '../x', '../../etc/passwd', 'a/b', '/', '.hidden', '-x', '_x', 'a b', 'a\\b', '..\\x', '*', '?', '%2F', 'a%2Fb', '\u0000', 'x\u0000', 'ünï', 'a'.repeat(129)),
  fc.string({ minLength: 0, maxLength: 40 }).filter((s) => !isValidName(s)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((s) => !isValidName(s)),
  fc.tuple(validName, fc.constantFrom('/', '/../', '/./', '\\', ' ', '%', '#', '?'), validName).map(([a, sep, b]) => a + sep + b),
  fc.integer({ min: 129, max: 1500 }).map((n) => 'n'.repeat(n)),
);
/** How a name is put into the path: encoded (the usual), double-encoded, or as written when it can be. */
const inPath = (name: string) =>
  fc.constantFrom('encoded', 'double', 'raw').map((how) => {
    if (how === 'double') return encodeURIComponent(encodeURIComponent(name));
    // As written only when that cannot change the name: a raw `?`/`#` ends the path, and a raw
    // `%37` is a valid escape of `7`.
    if (how === 'raw' && /^[\x21-\x7e]*$/.test(name) && !/[?#%]/.test(name)) return name;
    return encodeURIComponent(name);
  });

// ---- bodies ---------------------------------------------------------------------------------
const anyJson = fc.jsonValue({ maxDepth: 2 });
const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }));
/** null counts as "absent" for optional fields, so it is only bad for required ones. */
const notStringNonNull = notString.filter((v) => v !== null);
// Finite only: JSON turns NaN and Infinity into null, which an optional field takes for "absent".
const notInteger = fc.oneof(fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }), fc.string(), fc.boolean(), fc.array(fc.nat(), { maxLength: 2 }), fc.constant({}));
const badAddress = fc.oneof(
  fc.constantFrom('', ' ', 'http://10.0.0.1/', '10.0.0.1:80', 'a..b', '-a', 'a-', 'a'.repeat(254), '10.0.0.1/8'),
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom(' ', '/', '@', '#', '\u0000', '_', '!', '"', '\n'), fc.string({ maxLength: 10 })).map((p) => p.join('')),
  notString,
);
const badMetadata = fc.oneof(
  fc.integer({ min: 65, max: 300 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))),
  fc.constantFrom({ '': 'v' }, { 'a b': 'v' }, { ['k'.repeat(129)]: 'v' }, { k: 'v'.repeat(513) }, { 'ü': 'v' }, { k: 1 }, { k: null }, { k: ['v'] }, { k: { v: 'w' } }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), notString, { minKeys: 1, maxKeys: 4 }),
  fc.oneof(fc.string(), fc.integer(), fc.array(fc.string(), { maxLength: 3 }), fc.boolean()),
);
const badTags = fc.oneof(
  fc.integer({ min: 33, max: 200 }).map((n) => Array.from({ length: n }, (_, i) => `t${i}`)),
  fc.array(notStringNonNull, { minLength: 1, maxLength: 3 }),
  fc.constantFrom(['t'.repeat(129)], 'canary', { canary: true }, 7),
);
const KNOWN_FIELDS = new Set(['address', 'port', 'ttl', 'metadata', 'tags', 'zone', 'weight', 'status']);
/** A valid body with exactly one thing wrong, so every request exercises one rule. */
const oneBadField: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 65536 }), notInteger, fc.constant(null)).map((port) => ({ ...validRegistration, port })),
  badAddress.map((address) => ({ ...validRegistration, address })),
  fc.oneof(fc.integer({ max: 4 }), fc.integer({ min: 301 }), notInteger).map((ttl) => ({ ...validRegistration, ttl })),
  fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 1001 }), notInteger).map((weight) => ({ ...validRegistration, weight })),
  badMetadata.map((metadata) => ({ ...validRegistration, metadata })),
  badTags.map((tags) => ({ ...validRegistration, tags })),
  fc.oneof(badName.filter((z) => z !== ''), notStringNonNull).map((zone) => ({ ...validRegistration, zone })),
  fc.oneof(fc.string().filter((s) => !['UP', 'DRAINING', 'DOWN'].includes(s)), notStringNonNull).map((status) => ({ ...validRegistration, status })),
  fc
    .tuple(fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !KNOWN_FIELDS.has(k) && k !== '__proto__'), anyJson)
    .map(([key, value]) => ({ ...validRegistration, [key]: value })),
  fc.constantFrom({ port: 8080 }, { address: '10.0.0.1' }, {}),
  // Keys naming inherited Object members, at the top level or in metadata.
  fc
    .constantFrom('valueOf', 'toString', 'constructor', 'prototype', 'hasOwnProperty', 'isPrototypeOf', 'toLocaleString', '__defineGetter__')
    .chain((key) => fc.constantFrom({ ...validRegistration, [key]: 'x' }, { ...validRegistration, metadata: { [key]: 'x' } })),
);
const badBody: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: oneBadField },
  { weight: 1, arbitrary: anyJson.filter((v) => typeof v !== 'object' || v === null || Array.isArray(v) || !('address' in v)) },
  // Text that is not the JSON of a valid registration: cut-off JSON, garbage, __proto__ keys.
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => s) },
  { weight: 1, arbitrary: fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1)) + '{') },
  { weight: 1, arbitrary: fc.constant('{"address":"10.0.0.1","port":80,"__proto__":{"admin":true}}') },
  // Deep nesting that still fits in the body limit.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 9, max: 7000 }), fc.constantFrom('tags', 'metadata', 'extra'))
      .map(([depth, field]) => `{"address":"10.0.0.1","port":80,"${field}":${'['.repeat(depth)}${']'.repeat(depth)}}`),
  },
  // Over the 16 KiB body limit.
  { weight: 1, arbitrary: fc.integer({ min: 16 * 1024 + 1, max: 256 * 1024 }).map((n) => Buffer.alloc(n, 'x')) },
);

// ---- requests -------------------------------------------------------------------------------
type Auth = 'admin' | 'none' | 'garbage' | 'reader';
interface FuzzCase {
  req: Omit<HttpRequest, 'token'>;
  auth: Auth;
}
const auth = fc.constantFrom<Auth>('admin', 'admin', 'admin', 'admin', 'admin', 'none', 'garbage', 'reader');
const path = (service: string, id: string, suffix: string) => `/v1/services/${service}/instances/${id}${suffix}`;

/** A bad name in the service or id position of any instance route, or in a resolve. */
const badNameCase: fc.Arbitrary<FuzzCase> = fc
  .record({
    bad: badName.chain((n) => inPath(n)),
    good: validName,
    badIsService: fc.boolean(),
    route: fc.constantFrom<[string, string]>(['PUT', ''], ['PUT', '/heartbeat'], ['DELETE', ''], ['PATCH', ''], ['GET', '']),
    auth,
  })
  .map(({ bad, good, badIsService, route: [method, suffix], auth }) => ({
    req: {
      method,
      // GET is the resolve route, /v1/services/{service}.
      path: method === 'GET' ? `/v1/services/${bad}` : badIsService ? path(bad, good, suffix) : path(good, bad, suffix),
      body: method === 'PUT' && !suffix ? validRegistration : method === 'PATCH' ? { weight: 1 } : undefined,
    },
    auth,
  }));

/** Valid names, bad registration body. */
const badBodyCase: fc.Arbitrary<FuzzCase> = fc
  .record({ service: validName, id: validName, body: badBody, auth })
  .map(({ service, id, body, auth }) => ({ req: { method: 'PUT', path: path(service, id, ''), body }, auth }));

function isJsonClientError(res: HttpResponse): boolean {
  return res.status >= 400 && res.status < 500 && /^application\/json/.test(String(res.headers['content-type'])) && typeof res.json?.error === 'string';
}

describe('fuzzing the REST inputs', () => {
  // The per-token rate limit would turn most of these into 429s before validation: off here.
  const secured = useSecuredGateway({ RATE_LIMIT_REGISTRATIONS_PER_SECOND: '0', LOG_LEVEL: 'error' });
  const statuses = new Map<number, number>();
  const send = async ({ req, auth: who }: FuzzCase): Promise<HttpResponse> => {
    const token = who === 'admin' ? secured.tokens.admin : who === 'reader' ? secured.tokens.reader : who === 'garbage' ? 'not-a-token' : undefined;
    const res = await rawRequest(secured.gw.url, { ...req, token });
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    return res;
  };

  it('answers bad names in every instance route with a 4xx JSON error', async () => {
    await fc.assert(
      fc.asyncProperty(badNameCase, async (c) => {
        const res = await send(c);
        if (!isJsonClientError(res)) throw new Error(`${c.req.method} ${c.req.path} -> ${res.status} ${res.text.slice(0, 200)}`);
      }),
      { numRuns: 2500 },
    );
  });

  it('answers bad registration bodies with a 4xx JSON error', async () => {
    await fc.assert(
      fc.asyncProperty(badBodyCase, async (c) => {
        const res = await send(c);
        if (!isJsonClientError(res)) {
          const body = Buffer.isBuffer(c.req.body) ? `<${c.req.body.length} bytes>` : JSON.stringify(c.req.body)?.slice(0, 300);
          throw new Error(`${c.req.path} (${c.auth}) ${body} -> ${res.status} ${res.text.slice(0, 200)}`);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('is still up, wrote no key at all, and registers a valid instance afterwards', async () => {
    expect([...statuses.keys()].every((s) => s >= 400 && s < 500)).toBe(true);
    expect((await rawRequest(secured.gw.url, { method: 'GET', path: '/metrics' })).status).toBe(200);
    const admin = etcdAdmin();
    expect(await admin.keysOutside('/registry/')).toEqual([]);
    expect(await admin.instanceKeys(secured.gw.prefix)).toEqual([]);

    const res = await rawRequest(secured.gw.url, { method: 'PUT', path: path('payments', 'after-fuzz', ''), token: secured.tokens.admin, body: validRegistration });
    expect(res.status).toBe(201);
    expect(await admin.instanceKeys(secured.gw.prefix)).toEqual([`${secured.gw.prefix}services/payments/after-fuzz`]);
  });
});
