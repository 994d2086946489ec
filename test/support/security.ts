/**
 * Helpers of the security tests (test/security*.e2e-spec.ts): a token file with one token per role,
 * gateways started with authentication on. Requests go through test/support/http's rawRequest (raw
 * path, raw headers, bearer token).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
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
