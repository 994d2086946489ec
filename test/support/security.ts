/**
 * Helpers of the security tests (test/security*.e2e-spec.ts): a token file with one token per role,
 * gateways started with authentication on, and an HTTP client that sends any method, raw path
 * (no URL normalisation, so `../x` reaches the server as written), body and bearer token.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { GatewayUnderTest, startGateway } from './gateway';
import { sharedStack } from './stack';

export interface TestTokens {
  admin: string;
  reader: string;
  /** An agent whose globs are `payments` and `payments-*`. */
  agent: string;
  file: string;
  /** Every secret in the file, for "never appears in ..." assertions. */
  secrets: string[];
  remove(): void;
}

const secret = (): string => randomBytes(24).toString('base64url');

export function writeTokenFile(extra: unknown[] = []): TestTokens {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-tokens-'));
  const file = path.join(dir, 'tokens.json');
  const admin = secret();
  const reader = secret();
  const agent = secret();
  const tokens = [
    { name: 'ops', token: admin, role: 'admin' },
    { name: 'dashboards', token: reader, role: 'reader' },
    { name: 'payments-agent', token: agent, role: 'agent', services: ['payments', 'payments-*'] },
    ...extra,
  ];
  fs.writeFileSync(file, JSON.stringify({ tokens }, null, 2), { mode: 0o600 });
  const secrets = tokens.map((t) => (t as { token?: string }).token).filter((t): t is string => !!t);
  return { admin, reader, agent, file, secrets, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A gateway on the shared stack with authentication on (the harness default is AUTH_DISABLED=true). */
export function startSecuredGateway(tokens: TestTokens, overrides: Record<string, string> = {}): Promise<GatewayUnderTest> {
  const stack = sharedStack();
  return startGateway(stack.etcd, stack.redis.url, { AUTH_DISABLED: 'false', AUTH_TOKENS_FILE: tokens.file, ...overrides });
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given: encode it yourself. */
  path: string;
  token?: string;
  /** Objects are sent as JSON; strings and buffers as they are (with a JSON content type). */
  body?: unknown;
  headers?: Record<string, string>;
}

const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function rawRequest(baseUrl: string, req: RawRequest): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const payload =
    req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
  const headers: Record<string, string> = {
    ...(payload ? { 'content-type': 'application/json' } : {}),
    // A chunked body has no length up front: the server must count while it reads.
    ...(payload && !req.headers?.['transfer-encoding'] ? { 'content-length': String(payload.length) } : {}),
    ...(req.token !== undefined ? { authorization: `Bearer ${req.token}` } : {}),
    ...req.headers,
  };
  return new Promise((resolve, reject) => {
    const r = http.request({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: keepAliveAgent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    r.on('error', reject);
    if (payload) r.write(payload);
    r.end();
  });
}

/** Closes the keep-alive sockets of rawRequest (call in afterAll, so jest has no open handles). */
export function closeRawAgent(): void {
  keepAliveAgent.destroy();
}

export const instancePath = (service: string, id: string): string => `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}`;

export const validRegistration = { address: '10.0.0.7', port: 8080 };

/**
 * A gateway with authentication on for one describe block: a fresh token file and gateway in
 * beforeAll, both removed in afterAll. Read `.gw` and `.tokens` inside tests (set once beforeAll ran).
 */
export function useSecuredGateway(overrides: Record<string, string> = {}): { readonly gw: GatewayUnderTest; readonly tokens: TestTokens } {
  const state = {} as { gw: GatewayUnderTest; tokens: TestTokens };
  beforeAll(async () => {
    state.tokens = writeTokenFile();
    state.gw = await startSecuredGateway(state.tokens, overrides);
  });
  afterAll(async () => {
    await state.gw?.close();
    state.tokens?.remove();
  });
  return state;
}
