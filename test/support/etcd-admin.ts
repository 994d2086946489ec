/**
 * Root access to etcd for assertions the gateway user could never make, such as "no key exists
 * outside the registry prefix". Uses etcdctl (a short-lived process) so tests keep no open handles.
 * Each call authenticates once as root: it shows up in counters().authenticate, so take counter
 * snapshots around the code under test, not around these helpers.
 */
import { spawn } from 'node:child_process';
import { sharedStack } from './stack';

export interface EtcdRootAccess {
  endpoint: string;
  rootUser: string;
  rootPassword: string;
}

export interface EtcdAdmin {
  /** All keys under `prefix` ('' = the whole keyspace), sorted. */
  listKeys(prefix?: string): Promise<string[]>;
  /** The instance keys under a gateway's prefix (`<prefix>services/`), not the gateway's own keys (`<prefix>gateway/`). */
  instanceKeys(gatewayPrefix: string): Promise<string[]>;
  /** Keys that are NOT under `prefix`. etcd's own auth data is not in the keyspace, so [] is the norm. */
  keysOutside(prefix: string): Promise<string[]>;
  /** Value of one key, or undefined. */
  get(key: string): Promise<string | undefined>;
  /** Delete everything under `prefix` (test isolation). Returns the number of deleted keys. */
  deletePrefix(prefix: string): Promise<number>;
}

interface JsonRange {
  kvs?: Array<{ key: string; value?: string }>;
  deleted?: number;
}

function etcdctlJson(access: EtcdRootAccess, args: string[]): Promise<JsonRange> {
  return new Promise((resolve, reject) => {
    const env = {
      ...process.env,
      ETCDCTL_API: '3',
      ETCDCTL_ENDPOINTS: access.endpoint,
      // In the environment, not argv: `ps` must not show the root password.
      ETCDCTL_USER: `${access.rootUser}:${access.rootPassword}`,
    };
    const child = spawn('etcdctl', ['--command-timeout=10s', '-w', 'json', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`etcdctl ${args[0]} failed (${code}): ${err.trim()}`));
      resolve(JSON.parse(out) as JsonRange);
    });
  });
}

// JSON output base64-encodes keys and values: binary- and newline-safe, unlike the plain format.
const b64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** Admin helper for the shared test etcd, or for any server you started (an EtcdServer fits). */
export function etcdAdmin(access: EtcdRootAccess = sharedStack().etcd): EtcdAdmin {
  const listKeys = async (prefix = ''): Promise<string[]> => {
    // '' with --prefix means "from the first key to the end": the entire keyspace.
    const res = await etcdctlJson(access, ['get', prefix, '--prefix', '--keys-only']);
    return (res.kvs ?? []).map((kv) => b64(kv.key)).sort();
  };
  return {
    listKeys,
    instanceKeys: (gatewayPrefix) => listKeys(`${gatewayPrefix}services/`),
    keysOutside: async (prefix) => (await listKeys('')).filter((k) => !k.startsWith(prefix)),
    get: async (key) => {
      const res = await etcdctlJson(access, ['get', key]);
      const kv = res.kvs?.[0];
      return kv ? b64(kv.value ?? '') : undefined;
    },
    deletePrefix: async (prefix) => {
      if (!prefix) throw new Error('refusing to delete the whole keyspace');
      return (await etcdctlJson(access, ['del', prefix, '--prefix'])).deleted ?? 0;
    },
  };
}
