/**
 * The Redis part of the configuration: three shapes, exactly one at a time, each with TLS and
 * passwords, turned into the serializable RedisTarget that every Redis client of the process (the HTTP
 * thread's, the lease engine worker's ledger) is built from.
 *
 *   REDIS_URL=redis://[user:password@]host:port[/db]    one Redis (rediss:// = TLS); the default
 *   REDIS_SENTINELS=host:port,... + REDIS_SENTINEL_NAME  a primary found and followed through Sentinel
 *   REDIS_CLUSTER_NODES=host:port,...                    a Redis Cluster (some nodes; the rest is discovered)
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { RedisEndpoint, RedisTarget } from '@app/redis';
import { ConfigError } from './config-error';

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const endpoints = z
  .string()
  .transform((s) => s.split(',').map((e) => e.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'a comma list of host:port')).min(1, 'a comma list of host:port'));

/** Spread into the gateway's schema. Passwords may come from `<NAME>_FILE` (see REDIS_SECRET_VARIABLES). */
export const REDIS_VARIABLES = {
  // No default here: the default (redis://127.0.0.1:6379) applies only when no other shape is set.
  REDIS_URL: z.string().regex(/^rediss?:\/\/[^/?#]+/, 'redis://host:port or rediss://host:port').optional(),
  REDIS_SENTINELS: endpoints.optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'a Sentinel group name ([A-Za-z0-9._-])').optional(),
  REDIS_CLUSTER_NODES: endpoints.optional(),
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  REDIS_TLS: bool.default(false),
  REDIS_TLS_CA_FILE: z.string().optional(),
};

/** Secret variables that may be read from `<NAME>_FILE` (REDIS_URL may carry a password). */
export const REDIS_SECRET_VARIABLES = ['REDIS_URL', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'] as const;

type RedisValues = z.output<z.ZodObject<typeof REDIS_VARIABLES>>;

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** The validated variables as a RedisTarget; throws ConfigError naming the variable (never a secret). */
export function redisTargetFromConfig(values: RedisValues): RedisTarget {
  const shapes = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((name) => values[name] !== undefined);
  if (shapes.length > 1) throw new ConfigError(`${shapes.join(' and ')} are all set; set exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES`);
  if (values.REDIS_SENTINELS && !values.REDIS_SENTINEL_NAME) throw new ConfigError('REDIS_SENTINEL_NAME must be set with REDIS_SENTINELS (the name of the monitored group)');
  if (!values.REDIS_SENTINELS && values.REDIS_SENTINEL_NAME) throw new ConfigError('REDIS_SENTINEL_NAME is set without REDIS_SENTINELS');
  if (!values.REDIS_SENTINELS && values.REDIS_SENTINEL_PASSWORD) throw new ConfigError('REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS');

  let ca: string | undefined;
  if (values.REDIS_TLS_CA_FILE) {
    try {
      ca = readFileSync(values.REDIS_TLS_CA_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError(`REDIS_TLS_CA_FILE: cannot read ${values.REDIS_TLS_CA_FILE}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  const auth = (tlsFromUrl = false) => ({
    ...(values.REDIS_USERNAME ? { username: values.REDIS_USERNAME } : {}),
    ...(values.REDIS_PASSWORD ? { password: values.REDIS_PASSWORD } : {}),
    ...(values.REDIS_TLS || tlsFromUrl || ca ? { tls: ca ? { ca } : {} } : {}),
  });

  if (values.REDIS_SENTINELS) {
    return {
      kind: 'sentinel',
      sentinels: values.REDIS_SENTINELS.map(toEndpoint),
      name: values.REDIS_SENTINEL_NAME!,
      ...(values.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: values.REDIS_SENTINEL_PASSWORD } : {}),
      ...auth(),
    };
  }
  if (values.REDIS_CLUSTER_NODES) return { kind: 'cluster', nodes: values.REDIS_CLUSTER_NODES.map(toEndpoint), ...auth() };

  const url = parseUrl(values.REDIS_URL ?? DEFAULT_URL);
  const fromUrl = { username: url.username ? decodeURIComponent(url.username) : undefined, password: url.password ? decodeURIComponent(url.password) : undefined };
  if (fromUrl.password && values.REDIS_PASSWORD) throw new ConfigError('REDIS_URL carries a password and REDIS_PASSWORD is set too; use one');
  const db = url.pathname.replace(/^\//, '') || '0';
  if (!/^\d{1,2}$/.test(db)) throw new ConfigError('invalid REDIS_URL: the path must be a database number (redis://host:port/0)');
  const target: RedisTarget = {
    kind: 'single',
    endpoint: { host: url.hostname, port: url.port ? Number(url.port) : 6379 },
    db: Number(db),
    ...auth(url.protocol === 'rediss:'),
  };
  if (fromUrl.username && !target.username) target.username = fromUrl.username;
  if (fromUrl.password) target.password = fromUrl.password;
  return target;
}

function parseUrl(value: string): URL {
  try {
    return new URL(value);
  } catch {
    // The value may carry a password: never echo it.
    throw new ConfigError('invalid REDIS_URL: not a URL like redis://host:port');
  }
}

function toEndpoint(hostPort: string): RedisEndpoint {
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)) };
}
