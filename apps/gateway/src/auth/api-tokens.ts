import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, GatewayConfig } from '../config/gateway-config';
import { compileServiceGlobs, SERVICE_GLOB_PATTERN } from './service-glob';

export const API_ROLES = ['agent', 'reader', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** One entry of the token file as the gateway keeps it: the secret only as its sha256 digest. */
export interface ApiToken {
  readonly name: string;
  readonly role: ApiRole;
  /** The service globs of an agent; empty for readers and admins, who cover every service. */
  readonly services: readonly string[];
  readonly digest: Buffer;
  coversService(service: string): boolean;
}

const tokenEntry = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit'),
    // A bearer token travels in a header: printable ASCII without spaces. 16 characters is a floor
    // against guessable tokens, not a recommendation (generate 32 random bytes).
    token: z
      .string()
      .min(16, 'must be at least 16 characters')
      .max(4096, 'must be at most 4096 characters')
      .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
      .optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (the sha256 of the token)')
      .optional(),
    role: z.enum(API_ROLES),
    services: z
      .array(z.string().regex(SERVICE_GLOB_PATTERN, 'must be a glob of [A-Za-z0-9._-] with * and ?, 1-128 characters'))
      .min(1, 'must list at least one service glob')
      .max(1000)
      .optional(),
  })
  .refine((t) => (t.token === undefined) !== (t.sha256 === undefined), { message: 'set exactly one of "token" or "sha256"' })
  .refine((t) => t.role !== 'agent' || t.services !== undefined, {
    message: 'an agent token needs "services" (globs of the services it may act on)',
    path: ['services'],
  })
  .refine((t) => t.role === 'agent' || t.services === undefined, {
    message: '"services" applies to agent tokens only (readers and admins cover every service)',
    path: ['services'],
  });

const tokenFile = z.strictObject({ tokens: z.array(tokenEntry).min(1, 'must list at least one token') });

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The API tokens of `AUTH_TOKENS_FILE`. Plain tokens are hashed at load and not kept; a presented
 * token is hashed and compared with every digest in constant time, so neither the comparison nor
 * the position of the matching entry shows in the response time.
 */
export class ApiTokens {
  private constructor(private readonly entries: readonly ApiToken[]) {}

  get size(): number {
    return this.entries.length;
  }

  verify(presented: string): ApiToken | undefined {
    const digest = sha256(presented);
    let match: ApiToken | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest) && !match) match = entry;
    }
    return match;
  }

  /** Parses and validates the file contents. Error messages name the entry and field, never a token. */
  static parse(text: string, source: string): ApiTokens {
    const fail: (problem: string) => never = (problem) => {
      throw new ConfigError(`AUTH_TOKENS_FILE (${source}): ${problem}`);
    };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      // V8's message quotes the text around the error, which may be a token: keep only the position.
      const position = /position (\d+)/.exec((err as Error).message)?.[1];
      fail(`not valid JSON${position ? ` (at character ${position})` : ''}`);
    }
    const parsed = tokenFile.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      fail(`${formatPath(issue.path) || 'file'}: ${issue.message}`);
    }
    const entries: ApiToken[] = [];
    const names = new Set<string>();
    for (const [index, entry] of parsed.data.tokens.entries()) {
      if (names.has(entry.name)) fail(`tokens[${index}].name: duplicate token name "${entry.name}"`);
      names.add(entry.name);
      const digest = entry.token !== undefined ? sha256(entry.token) : Buffer.from(entry.sha256!, 'hex');
      const twin = entries.find((e) => e.digest.equals(digest));
      if (twin) fail(`tokens[${index}]: "${entry.name}" has the same token as "${twin.name}"`);
      const services = entry.services ?? [];
      const inScope = compileServiceGlobs(services);
      entries.push({
        name: entry.name,
        role: entry.role,
        services,
        digest,
        coversService: entry.role === 'agent' ? inScope : () => true,
      });
    }
    return new ApiTokens(entries);
  }

  static fromFile(file: string): ApiTokens {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`AUTH_TOKENS_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return ApiTokens.parse(text, file);
  }
}

/**
 * The tokens the gateway starts with, or undefined when authentication is explicitly disabled.
 * Running without tokens by accident must be impossible: no file and no AUTH_DISABLED=true is an error.
 */
export function loadApiTokens(config: Pick<GatewayConfig, 'AUTH_TOKENS_FILE' | 'AUTH_DISABLED'>): ApiTokens | undefined {
  if (config.AUTH_DISABLED) {
    if (config.AUTH_TOKENS_FILE) throw new ConfigError('AUTH_TOKENS_FILE and AUTH_DISABLED=true are both set; use one');
    return undefined;
  }
  if (!config.AUTH_TOKENS_FILE) {
    throw new ConfigError(
      'AUTH_TOKENS_FILE is not set: the gateway does not run without API tokens. Point AUTH_TOKENS_FILE at a token file, or set AUTH_DISABLED=true to run without authentication (development only)',
    );
  }
  return ApiTokens.fromFile(config.AUTH_TOKENS_FILE);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}
