/**
 * Issue 14: the OpenAPI document is the contract, and the live server keeps it. The document the
 * gateway serves passes `redocly lint` with no error (offline), and a property-based run generates
 * requests from the document's own operations (valid and invalid path parameters, query parameters
 * and bodies, odd content types, every kind of token or none) against a live gateway with
 * authentication on: no answer is a 5xx, every status is documented for its operation, and every
 * JSON body validates against the schema documented for that status.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv, { ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { etcdAdmin } from './support/etcd-admin';
import { useSecuredGateway } from './support/security';
import { HttpResponse, rawRequest } from './support/http';

jest.setTimeout(120_000);

// ---- the document's shapes (only what this test reads) -------------------------------------
type Schema = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON Schema is open-ended
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}
interface Operation {
  summary?: string;
  security?: unknown[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }>; headers?: Record<string, unknown> }>;
}
interface OpenApiDocument {
  servers?: Array<{ url: string }>;
  security?: unknown[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; securitySchemes?: Record<string, Schema> };
}
interface Endpoint {
  method: string;
  template: string;
  op: Operation;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const REPO_ROOT = path.resolve(__dirname, '..');

function endpoints(doc: OpenApiDocument): Endpoint[] {
  return Object.entries(doc.paths).flatMap(([template, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, op]) => ({ method: method.toUpperCase(), template, op })),
  );
}

function resolveRef(doc: OpenApiDocument, schema: Schema): Schema {
  return typeof schema.$ref === 'string' ? resolveRef(doc, doc.components.schemas[schema.$ref.split('/').pop()!]) : schema;
}

/**
 * A copy for ajv in which objects that list their properties allow no others: a field the document
 * does not mention (Fastify's `statusCode`, a stray internal field) is a mismatch, not an extension.
 */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Schema = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'example' ? v : strict(v)]));
  if (copy.properties && copy.additionalProperties === undefined) copy.additionalProperties = false;
  if (typeof copy.$ref === 'string') copy.$ref = copy.$ref.replace('#/components/', 'openapi#/components/');
  return copy;
}

function runRedoclyLint(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['--no-install', 'redocly', 'lint', '--format=json', file],
      // Telemetry off and no update check: the lint must work without a network.
      { cwd: REPO_ROOT, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// ---- request generation from the document ---------------------------------------------------
type Auth = 'admin' | 'agent' | 'reader' | 'none' | 'garbage';
interface GeneratedRequest {
  endpoint: Endpoint;
  path: string;
  auth: Auth;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** For failure messages. */
  what: string;
}

/** Names shared between operations, so heartbeats, PATCHes and lookups meet registered instances. */
const SERVICE_POOL = ['payments', 'payments-eu', 'billing'];
const ID_POOL = ['p1', 'p2'];
const BAD_NAMES = ['..', '.hidden', '-x', 'a b', 'a/b', '../x', 'ü', 'a%b', '*', 'x'.repeat(129), 'x'.repeat(1100)];

function stringFor(schema: Schema): fc.Arbitrary<string> {
  if (schema.enum) return fc.constantFrom(...(schema.enum as string[]));
  const maxLength = Math.min(schema.maxLength ?? 24, 24);
  if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length <= (schema.maxLength ?? Infinity) && s.length >= (schema.minLength ?? 0));
  const random = fc.string({ minLength: schema.minLength ?? 0, maxLength });
  // Without a pattern, the example is the one value known to be valid (an address, say).
  return schema.example === undefined ? random : fc.oneof({ weight: 3, arbitrary: fc.constant(String(schema.example)) }, { weight: 1, arbitrary: random });
}

/** A value the schema accepts (as far as the document can say: `address` has no pattern, say). */
function validValue(doc: OpenApiDocument, raw: Schema): fc.Arbitrary<unknown> {
  const schema = resolveRef(doc, raw);
  switch (schema.type) {
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6 });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(validValue(doc, schema.items ?? {}), { maxLength: Math.min(schema.maxItems ?? 3, 3) });
    case 'object':
      if (schema.properties) return validObject(doc, schema);
      return fc.dictionary(fc.stringMatching(/^[a-z0-9]{1,8}$/), validValue(doc, schema.additionalProperties ?? { type: 'string' }), { maxKeys: 3 });
    default:
      return stringFor(schema);
  }
}

function validObject(doc: OpenApiDocument, schema: Schema): fc.Arbitrary<Record<string, unknown>> {
  const required = new Set<string>(schema.required ?? []);
  const entries = Object.entries(schema.properties as Record<string, Schema>).map(([name, prop]) =>
    required.has(name) ? validValue(doc, prop).map((v) => [[name, v]] as Array<[string, unknown]>) : fc.option(validValue(doc, prop), { nil: undefined }).map((v) => (v === undefined ? [] : [[name, v]]) as Array<[string, unknown]>),
  );
  return fc.tuple(...entries).map((parts) => Object.fromEntries(parts.flat()));
}

/** A value of the wrong type, or out of the schema's range or pattern. */
function invalidValue(doc: OpenApiDocument, raw: Schema): fc.Arbitrary<unknown> {
  const schema = resolveRef(doc, raw);
  const wrongType = schema.type === 'string' ? fc.constantFrom<unknown>(5, true, ['x'], {}) : fc.constantFrom<unknown>('80', 'x', true, [1]);
  const out: fc.Arbitrary<unknown>[] = [wrongType, fc.constant(null)];
  if (schema.type === 'integer') {
    if (schema.maximum !== undefined) out.push(fc.integer({ min: schema.maximum + 1, max: schema.maximum + 1e6 }));
    if (schema.minimum !== undefined) out.push(fc.integer({ min: schema.minimum - 1e6, max: schema.minimum - 1 }));
    out.push(fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }));
  }
  if (schema.pattern) out.push(fc.constantFrom(...BAD_NAMES.slice(0, 9)));
  if (schema.enum) out.push(fc.string({ maxLength: 8 }).filter((s) => !schema.enum.includes(s)));
  if (schema.maxItems !== undefined) out.push(fc.constant(Array.from({ length: schema.maxItems + 1 }, (_, i) => `t${i}`)));
  return fc.oneof(...out);
}

/** A body the schema refuses: one thing wrong with an otherwise valid body. */
function invalidObject(doc: OpenApiDocument, schema: Schema): fc.Arbitrary<unknown> {
  const props = Object.keys(schema.properties as Record<string, Schema>);
  const required: string[] = schema.required ?? [];
  const base = validObject(doc, schema);
  const options: fc.Arbitrary<unknown>[] = [
    fc.tuple(base, fc.constantFrom(...props)).chain(([body, name]) => invalidValue(doc, schema.properties[name]).map((v) => ({ ...body, [name]: v }))),
    base.map((body) => ({ ...body, unexpected: 'x' })),
    fc.constantFrom<unknown>([], 'text', 42, null),
  ];
  if (required.length) options.push(fc.tuple(base, fc.constantFrom(...required)).map(([body, name]) => Object.fromEntries(Object.entries(body).filter(([k]) => k !== name))));
  return fc.oneof(...options);
}

function pathParam(param: Parameter): fc.Arbitrary<string> {
  const pool = param.name === 'service' ? SERVICE_POOL : param.name === 'id' ? ID_POOL : [];
  const re = new RegExp(param.schema.pattern ?? '.*');
  const valid = fc.oneof({ weight: 3, arbitrary: pool.length ? fc.constantFrom(...pool) : stringFor(param.schema) }, { weight: 1, arbitrary: stringFor(param.schema) });
  const invalid = fc.oneof(fc.constantFrom(...BAD_NAMES), fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !re.test(s)));
  return fc.oneof({ weight: 7, arbitrary: valid }, { weight: 1, arbitrary: invalid }).map(encodeURIComponent);
}

/**
 * Query parameters: each documented one sometimes, valid or not, plus now and then an unknown one.
 * The blocking-query parameters (`index`, `wait`) are only ever sent invalid: a valid pair would
 * hold the request open for as long as it asks.
 */
function queryString(doc: OpenApiDocument, params: Parameter[]): fc.Arbitrary<string> {
  const parts: Array<fc.Arbitrary<string[]>> = params.map((param) => {
    const blocking = param.name === 'index' || param.name === 'wait';
    const value: fc.Arbitrary<unknown> = blocking
      ? fc.constantFrom('abc', '-1', '1.5', '11m', 'forever')
      : fc.oneof({ weight: 3, arbitrary: validValue(doc, param.schema) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) });
    return sometimes(value, blocking ? 0.05 : 0.25).map((v) => {
      if (v === undefined) return [];
      return (Array.isArray(v) ? v : [v]).map((item) => `${param.name}=${encodeURIComponent(String(item))}`);
    });
  });
  parts.push(sometimes(fc.constant('colour=red'), 0.05).map((v) => (v ? [v] : [])));
  return fc.tuple(...parts).map((all) => {
    const pairs = all.flat();
    return pairs.length ? `?${pairs.join('&')}` : '';
  });
}

/** `value` with the given probability, else undefined. */
function sometimes<T>(value: fc.Arbitrary<T>, chance: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: Math.round(chance * 100), arbitrary: value }, { weight: Math.round((1 - chance) * 100), arbitrary: fc.constant(undefined) });
}

type BodyKind = 'valid' | 'invalid' | 'text/plain' | 'form' | 'no content-type' | 'empty' | 'broken' | 'too large';

function requestFor(doc: OpenApiDocument, endpoint: Endpoint): fc.Arbitrary<GeneratedRequest> {
  const params = endpoint.op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === 'path');
  const bodySchema = endpoint.op.requestBody ? resolveRef(doc, endpoint.op.requestBody.content['application/json'].schema) : undefined;
  const auth = fc.constantFrom<Auth>('admin', 'admin', 'admin', 'admin', 'agent', 'reader', 'none', 'garbage');
  const body: fc.Arbitrary<{ kind: BodyKind; value?: unknown }> = bodySchema
    ? fc.oneof(
        { weight: 6, arbitrary: validObject(doc, bodySchema).map((value) => ({ kind: 'valid' as BodyKind, value })) },
        { weight: 4, arbitrary: invalidObject(doc, bodySchema).map((value) => ({ kind: 'invalid' as BodyKind, value })) },
        { weight: 2, arbitrary: fc.constantFrom<BodyKind>('text/plain', 'form', 'no content-type', 'empty', 'broken', 'too large').map((kind) => ({ kind })) },
      )
    : // Operations without a body: none, or an empty one with a content type (what HTTP wrappers send).
      fc.constantFrom<{ kind: BodyKind }>({ kind: 'valid' }, { kind: 'valid' }, { kind: 'empty' });
  return fc
    .record({ names: fc.tuple(...pathParams.map(pathParam)), query: queryString(doc, params.filter((p) => p.in === 'query')), auth, body })
    .map(({ names, query, auth: who, body: { kind, value } }) => {
      let filled = endpoint.template;
      pathParams.forEach((p, i) => (filled = filled.replace(`{${p.name}}`, names[i])));
      const headers: Record<string, string> = {};
      let payload: string | Buffer | undefined;
      const json = JSON.stringify(value ?? { address: '10.0.0.1', port: 80 });
      if (!bodySchema) {
        if (kind === 'empty') Object.assign(headers, { 'content-type': 'application/json', 'content-length': '0' });
      } else if (kind === 'valid' || kind === 'invalid') {
        headers['content-type'] = 'application/json';
        payload = json;
      } else if (kind === 'text/plain') {
        headers['content-type'] = 'text/plain';
        payload = json;
      } else if (kind === 'form') {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        payload = 'address=10.0.0.1&port=80';
      } else if (kind === 'no content-type') {
        payload = json;
      } else if (kind === 'empty') {
        Object.assign(headers, { 'content-type': 'application/json', 'content-length': '0' });
      } else if (kind === 'broken') {
        headers['content-type'] = 'application/json';
        payload = json.slice(0, -1);
      } else {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify({ address: '10.0.0.1', port: 80, metadata: { k: 'v'.repeat(20_000) } });
      }
      if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
      const shown = payload === undefined ? '' : ` ${kind} ${String(payload).slice(0, 200)}`;
      return { endpoint, path: filled + query, auth: who, headers, body: payload, what: `${endpoint.method} ${filled + query} (${who})${shown}` };
    });
}

// ---- the tests ------------------------------------------------------------------------------
describe('the OpenAPI contract', () => {
  const secured = useSecuredGateway({ LOG_LEVEL: 'error' });
  let doc: OpenApiDocument;

  beforeAll(async () => {
    const res = await rawRequest(secured.gw.url, { method: 'GET', path: '/openapi.json' });
    expect(res.status).toBe(200);
    doc = res.json as OpenApiDocument;
    // Instances for the generated heartbeats, PATCHes, lookups and deregistrations to find.
    for (const service of SERVICE_POOL) {
      for (const id of ID_POOL) {
        const registered = await rawRequest(secured.gw.url, { method: 'PUT', path: `/v1/services/${service}/instances/${id}`, token: secured.tokens.admin, body: { address: '10.0.0.1', port: 80, ttl: 300 } });
        expect(registered.status).toBe(201);
      }
    }
  });

  it('passes redocly lint with no error, offline', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-openapi-'));
    try {
      const file = path.join(dir, 'openapi.json');
      fs.writeFileSync(file, JSON.stringify(doc));
      const lint = await runRedoclyLint(file);
      let report: { totals: { errors: number; warnings: number }; problems: Array<{ ruleId: string; severity: string; message: string }> };
      try {
        report = JSON.parse(lint.stdout);
      } catch {
        throw new Error(`redocly produced no JSON report (exit ${lint.code}): ${lint.stderr.slice(-2000)}`);
      }
      const errors = report.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message}`);
      expect(errors).toEqual([]);
      expect(report.totals.errors).toBe(0);
      expect(lint.code).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('documents the Bearer scheme, public health routes, integers, name patterns, summaries and a server', () => {
    expect(doc.components.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.servers?.length).toBeGreaterThan(0);
    for (const { method, template, op } of endpoints(doc)) {
      expect(`${method} ${template}: ${op.summary ?? ''}`).toMatch(/: \S/);
      // /v1 inherits the document's Bearer requirement; only public routes opt out.
      expect(`${method} ${template} ${JSON.stringify(op.security)}`).toBe(`${method} ${template} ${JSON.stringify(template.startsWith('/health/') ? [] : undefined)}`);
      for (const p of (op.parameters ?? []).filter((q) => q.in === 'path')) {
        expect(p.schema).toEqual({ type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', minLength: 1, maxLength: 128 });
      }
      if (template.startsWith('/v1/')) expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['400', '401', '403', '503']));
    }
    const register = doc.components.schemas.RegisterInstanceDto;
    for (const field of ['port', 'ttl', 'weight']) expect(register.properties[field].type).toBe('integer');
    expect(register.additionalProperties).toBe(false);
    expect(doc.components.schemas.UpdateInstanceDto.additionalProperties).toBe(false);
  });

  it('answers generated requests with documented statuses and bodies, never a 5xx', async () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addSchema({ $id: 'openapi', components: strict(doc.components) });
    const validators = new Map<Schema, ValidateFunction>();
    const validatorFor = (schema: Schema): ValidateFunction => {
      let validate = validators.get(schema);
      if (!validate) validators.set(schema, (validate = ajv.compile(strict(schema) as Schema)));
      return validate;
    };
    const tokens = { admin: secured.tokens.admin, agent: secured.tokens.agent, reader: secured.tokens.reader, garbage: 'not-a-known-token-at-all', none: undefined };
    const seen = new Map<string, number>();

    const check = (req: GeneratedRequest, res: HttpResponse): void => {
      const fail = (why: string) => {
        throw new Error(`${req.what} -> ${res.status} ${res.text.slice(0, 300)}: ${why}`);
      };
      if (res.status >= 500) fail('a 5xx');
      const documented = req.endpoint.op.responses[String(res.status)];
      if (!documented) fail(`status not documented (documented: ${Object.keys(req.endpoint.op.responses).join(', ')})`);
      const schema = documented.content?.['application/json']?.schema;
      if (schema) {
        if (!/^application\/json/.test(String(res.headers['content-type']))) fail(`content-type ${res.headers['content-type']}`);
        const validate = validatorFor(schema);
        if (!validate(res.json)) fail(`body does not match the documented schema: ${ajv.errorsText(validate.errors)}`);
      } else if (res.text !== '') {
        fail('a body where the document promises none');
      }
      // Error answers carry the headers documented for them (WWW-Authenticate on 401, Retry-After on 429/503).
      if (res.status >= 400) for (const header of Object.keys(documented.headers ?? {})) if (!res.headers[header.toLowerCase()]) fail(`no ${header} header`);
      for (const secret of secured.tokens.secrets) if (res.text.includes(secret) || JSON.stringify(res.headers).includes(secret)) fail('a token in the answer');
      const key = `${req.endpoint.method} ${req.endpoint.template} ${res.status}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    };

    // Operations with a body (register, PATCH) more often: they create what the others act on. The
    // health probes take no input, so a few calls are enough.
    const weight = (e: Endpoint) => (e.op.requestBody ? 6 : e.template.startsWith('/health/') ? 1 : 2);
    const requests = fc.oneof(...endpoints(doc).map((endpoint) => ({ weight: weight(endpoint), arbitrary: requestFor(doc, endpoint) })));
    await fc.assert(
      fc.asyncProperty(requests, async (req) => {
        const token = tokens[req.auth];
        const headers = token === undefined ? req.headers : { ...req.headers, authorization: `Bearer ${token}` };
        check(req, await rawRequest(secured.gw.url, { method: req.endpoint.method, path: req.path, headers: Object.entries(headers).flat(), body: req.body }));
      }),
      { numRuns: 800 },
    );

    const statuses = new Set([...seen.keys()].map((k) => Number(k.split(' ').pop())));
    console.log(`contract run: ${[...seen].sort().map(([k, n]) => `${k} x${n}`).join('; ')}`);
    // The run must have reached past validation and authentication into every operation, not only bounced off them.
    const instance = '/v1/services/{service}/instances/{id}';
    for (const success of [`PUT ${instance} 20`, `PUT ${instance}/heartbeat 204`, `PATCH ${instance} 200`, `DELETE ${instance} 204`, 'GET /v1/services/{service} 200', 'GET /v1/services 200']) {
      expect([...seen.keys()].filter((k) => k.startsWith(success))).not.toEqual([]);
    }
    for (const status of [400, 401, 403, 404, 415]) expect([...statuses]).toContain(status);
  });

  it('stored only what the document allows: valid names, and no null anywhere', async () => {
    const admin = etcdAdmin();
    // Some registrations may have expired already (TTLs from 5 s): the run itself asserted that some succeeded.
    const keys = await admin.instanceKeys(secured.gw.prefix);
    const hasNull = (v: unknown): boolean => v === null || (typeof v === 'object' && Object.values(v as object).some(hasNull));
    for (const key of keys) {
      const [service, id] = key.slice(`${secured.gw.prefix}services/`.length).split('/');
      expect(`${service}/${id}`).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);
      const value = await admin.get(key);
      if (value === undefined) continue; // expired since the listing
      expect({ key, hasNull: hasNull(JSON.parse(value)) }).toEqual({ key, hasNull: false });
    }
    expect(await admin.keysOutside('/registry/')).toEqual([]);
  });
});
