import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { RedisTarget } from '@app/redis';
import { ConfigError } from './config-error';
import { REDIS_SECRET_VARIABLES, REDIS_VARIABLES, redisTargetFromConfig } from './redis-config';

export { ConfigError } from './config-error';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const endpoint = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'host:port');
const origin = z.string().regex(/^(\*|https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?)$/, 'a comma list of origins like https://app.example.com:8443, or *');

/** Environment variables of the gateway (design section 4, plus tuning knobs with safe defaults). */
const schema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ETCD_ENDPOINTS: z
    .string()
    .default('127.0.0.1:2379')
    .transform((s) => s.split(',').map((e) => e.trim()).filter(Boolean))
    .pipe(z.array(endpoint).min(1)),
  ETCD_USERNAME: z.string().min(1).optional(),
  ETCD_PASSWORD: z.string().min(1).optional(),
  ETCD_POOL_SIZE: int(1, 64).default(2),
  ETCD_PREFIX: z
    .string()
    .default('/registry/')
    .refine((p) => p.startsWith('/') && p.endsWith('/') && !p.includes('//'), 'must start and end with "/"')
    // Redis keys embed the prefix; a brace would become the key's Cluster hash tag (see RedisHeardSets).
    .refine((p) => !/[{}]/.test(p), 'must not contain "{" or "}"'),
  ETCD_REQUEST_TIMEOUT_MS: int(100, 60_000).default(3_000),
  ETCD_TLS_CA_FILE: z.string().optional(),
  ETCD_TLS_CERT_FILE: z.string().optional(),
  ETCD_TLS_KEY_FILE: z.string().optional(),
  // Redis in one of three shapes (one URL, Sentinel, Cluster): see redis-config.ts.
  ...REDIS_VARIABLES,
  // Shared leases (docs/shared-leases.md): every instance key is written on a lease shared by up to
  // LEASE_MAX_KEYS instances, of a lease class = the smallest multiple of LEASE_TTL that is at least 2x the
  // instance TTL (leaseClassTtl). An etcd outage shorter than 2/3 of the class loses no key; with every
  // gateway gone, keys are gone within the class (LEASE_TTL for instance TTLs up to LEASE_TTL/2).
  // Renewals: one per lease per classTtl/3 (1M instances: ~25/s for the cluster). At least 30
  // (MIN_LEASE_TTL_SECONDS in @app/etcd): a SIGKILLed replica's leases must outlive their takeover (~15 s).
  LEASE_TTL: int(30, 3_600).default(120),
  // 1,000: a renewal checks write permission per attached key (etcd 3.4.42+/3.5.28+/3.6.9+, 1.06 us per key):
  // ~1.3 ms per renewal, within 20 % of the floor per key. ~250 on 3.4.44+/3.5.30+/3.6.11+ with frequent registrations.
  LEASE_MAX_KEYS: int(1, 10_000).default(1_000),
  // Legacy instances (one lease per instance, previous release) moved onto shared leases at their next
  // heartbeat, per second at most (~4 % of an etcd core at 2,000/s): no mass rewrite at start.
  MIGRATIONS_PER_SECOND: int(1, 100_000).default(2_000),
  // Once per pass each replica publishes the instances it heard (heartbeats, registrations) to Redis (one
  // record per replica per pass), reads the others', and expires the silent instances of its leases.
  LIVENESS_PASS_MS: int(500, 60_000).default(2_000),
  // Self-preservation: when more than the threshold share of the instances on a replica's leases goes
  // silent at once, hold their deletion for at most SELF_PRESERVATION_MAX_MS (a mass death is then reported late).
  SELF_PRESERVATION: bool.default(true),
  SELF_PRESERVATION_THRESHOLD: z.coerce.number().gt(0).lt(1).default(0.5),
  SELF_PRESERVATION_MAX_MS: int(1_000, 86_400_000).default(300_000),
  // Event-loop delay (p99 over the last second) of the HTTP thread beyond which registrations are shed.
  ADMISSION_MAX_EVENT_LOOP_DELAY_MS: int(10, 60_000).default(250),
  WRITE_CONCURRENCY: int(1, 10_000).default(64),
  WRITE_QUEUE_CAPACITY: int(0, 1_000_000).default(5_000),
  // The Puts of concurrent registrations go to etcd as one Txn: at most this many per Txn (keep it at or
  // below etcd's --max-txn-ops, 128 by default; 1 = one Put per registration) and this many key+value bytes.
  WRITE_BATCH_MAX_PUTS: int(1, 10_000).default(100),
  WRITE_BATCH_MAX_BYTES: int(1_024, 64 * 1024 * 1024).default(512 * 1024),
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
  AUTH_TOKENS_FILE: z.string().optional(),
  AUTH_DISABLED: bool.default(false),
  // Registrations per API token (each costs etcd a batched Put on a shared lease); 0 turns the limit off.
  RATE_LIMIT_REGISTRATIONS_PER_SECOND: int(0, 1_000_000).default(200),
  RATE_LIMIT_REGISTRATIONS_BURST: int(1, 10_000_000).default(2_000),
  // Lookups are answered from memory (the directory the registry watch keeps current); an answer
  // the watch has not confirmed for this long (watch down or silent) is marked `stale: true`.
  STALE_AFTER_MS: int(500, 600_000).default(3_000),
  // Blocking queries (`?index=&wait=` on resolve) held open at once per replica; beyond it 429 + Retry-After.
  // Each costs memory only (a parked request, no etcd call): 5,000 fit well below 100 MiB.
  MAX_BLOCKING_QUERIES: int(1, 1_000_000).default(5_000),
  // Consul HTTP API subset (apps/gateway/src/doors/consul) on its own listener: off when unset (0 = any free port).
  CONSUL_API_PORT: int(0, 65535).optional(),
  // The datacenter the Consul door reports (`/v1/agent/self`, every entry); a query for another `dc` is refused.
  CONSUL_DATACENTER: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, '1-64 characters of [A-Za-z0-9_-]')
    .default('dc1'),
  // Browser origins allowed to call the API (CORS, with preflight); none by default, so CORS is off.
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((o) => o.trim()).filter(Boolean))
    .pipe(z.array(origin)),
});

/** Every variable the gateway reads (the README's configuration table must name each; a test checks it). */
export const GATEWAY_VARIABLES: readonly string[] = Object.keys(schema.shape);

export type GatewayConfig = z.output<typeof schema> & {
  etcdTls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Where Redis is, in whichever shape was configured; every Redis client of the process is built from it. */
  redis: RedisTarget;
};

const SECRET_FILES = ['ETCD_PASSWORD', 'ETCD_USERNAME', ...REDIS_SECRET_VARIABLES] as const;

/** Reads and validates the environment once, at start. `X_FILE` variables supply secret `X` from a file. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const resolved: Record<string, string | undefined> = { ...env };
  for (const name of SECRET_FILES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) throw new ConfigError(`${name} and ${name}_FILE are both set; use one`);
    try {
      resolved[name] = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`${name}_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  for (const key of Object.keys(resolved)) if (resolved[key] === '') delete resolved[key];
  const parsed = schema.safeParse(resolved);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`invalid ${String(issue.path[0])}: ${issue.message}`);
  }
  const config: GatewayConfig = { ...parsed.data, redis: redisTargetFromConfig(parsed.data) };
  if (Boolean(config.ETCD_USERNAME) !== Boolean(config.ETCD_PASSWORD)) {
    throw new ConfigError('ETCD_USERNAME and ETCD_PASSWORD (or ETCD_PASSWORD_FILE) must be set together');
  }
  const tlsFiles = { ca: config.ETCD_TLS_CA_FILE, cert: config.ETCD_TLS_CERT_FILE, key: config.ETCD_TLS_KEY_FILE };
  if (tlsFiles.ca || tlsFiles.cert || tlsFiles.key) {
    if (Boolean(tlsFiles.cert) !== Boolean(tlsFiles.key)) throw new ConfigError('ETCD_TLS_CERT_FILE and ETCD_TLS_KEY_FILE must be set together');
    config.etcdTls = {};
    for (const [part, file] of Object.entries(tlsFiles)) {
      if (!file) continue;
      try {
        config.etcdTls[part as 'ca' | 'cert' | 'key'] = readFileSync(file);
      } catch {
        throw new ConfigError(`ETCD_TLS_${part.toUpperCase()}_FILE: cannot read ${file}`);
      }
    }
  }
  return config;
}

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');
