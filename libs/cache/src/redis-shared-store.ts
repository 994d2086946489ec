import Redis from 'ioredis';
import { SharedChange, SharedDoc, SharedStamp, SharedStore } from './shared-store';

// A document is one Redis hash: `~rev` (etcd revision), `~at` (epoch ms of the etcd read it descends
// from) and one field per instance id or service name. Those never start with "~" (see NAME_PATTERN),
// so the two cannot collide. A hash lets a watch event change one field in place, without reading
// and rewriting the whole snapshot.

/** Compare-and-set on revision: never replaces a newer document; the same revision only refreshes `~at`. */
const REPLACE = `
local current = tonumber(redis.call('HGET', KEYS[1], '~rev') or '-1')
local revision = tonumber(ARGV[1])
if current > revision then return 0 end
if current == revision then
  if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], '~at') or '0') then redis.call('HSET', KEYS[1], '~at', ARGV[2]) end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '~rev', ARGV[1], '~at', ARGV[2])
local i = 4
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('HSET', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 2`;

/**
 * Changes of several documents in one round trip: KEYS[k] gets ARGV group k = count, revision, then
 * count (op, field, value) triples; applied only to a document held at an older revision.
 */
const APPLY = `
local a = 1
for k = 1, #KEYS do
  local count, revision = tonumber(ARGV[a]), ARGV[a + 1]
  local first = a + 2
  a = first + count * 3
  local current = redis.call('HGET', KEYS[k], '~rev')
  if current and tonumber(current) < tonumber(revision) then
    for i = first, a - 1, 3 do
      local op, field = ARGV[i], ARGV[i + 1]
      if op == 'set' then redis.call('HSET', KEYS[k], field, ARGV[i + 2])
      elseif op == 'del' then redis.call('HDEL', KEYS[k], field)
      elseif redis.call('HINCRBY', KEYS[k], field, ARGV[i + 2]) <= 0 then redis.call('HDEL', KEYS[k], field) end
    end
    redis.call('HSET', KEYS[k], '~rev', revision)
  end
end
return 1`;

const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface CacheScripts {
  registryCacheReplace(key: string, ...args: Array<string | number>): Promise<number>;
  registryCacheApply(keyCount: number, ...keysAndArgs: Array<string | number>): Promise<number>;
  registryCacheUnlock(key: string, token: string): Promise<number>;
}

/**
 * The L2 tier on Redis. Keys live under `namespace` (one per registry prefix), documents expire after
 * the TTL the caller passes, so Redis memory follows what is being looked up.
 */
export class RedisSharedStore implements SharedStore {
  private readonly scripts: CacheScripts;

  constructor(
    private readonly redis: Redis,
    private readonly namespace: string,
  ) {
    // ioredis sends EVALSHA and falls back to EVAL once per script after a Redis restart.
    redis.defineCommand('registryCacheReplace', { numberOfKeys: 1, lua: REPLACE });
    redis.defineCommand('registryCacheApply', { lua: APPLY }); // key count passed per call
    redis.defineCommand('registryCacheUnlock', { numberOfKeys: 1, lua: UNLOCK });
    this.scripts = redis as unknown as CacheScripts;
  }

  async read(doc: string): Promise<SharedDoc | undefined> {
    const hash = await this.redis.hgetall(this.docKey(doc));
    const stamp = toStamp(hash['~rev'], hash['~at']);
    if (!stamp) return undefined;
    const fields: Record<string, string> = {};
    for (const [field, value] of Object.entries(hash)) if (!field.startsWith('~')) fields[field] = value;
    return { ...stamp, fields };
  }

  async poll(doc: string): Promise<{ stamp: SharedStamp | undefined; locked: boolean }> {
    const results = await this.redis.pipeline().hmget(this.docKey(doc), '~rev', '~at').exists(this.lockKey(doc)).exec();
    if (!results) throw new Error('redis pipeline aborted');
    const [[stampErr, stamp], [lockErr, locked]] = results as [[Error | null, Array<string | null>], [Error | null, number]];
    if (stampErr || lockErr) throw stampErr ?? lockErr;
    return { stamp: toStamp(stamp[0], stamp[1]), locked: locked === 1 };
  }

  async replace(doc: string, value: SharedDoc, ttlMs: number): Promise<void> {
    const pairs = Object.entries(value.fields).flat();
    await this.scripts.registryCacheReplace(this.docKey(doc), value.revision, value.readAt, Math.max(1, Math.round(ttlMs)), ...pairs);
  }

  async apply(changes: readonly SharedChange[]): Promise<void> {
    if (!changes.length) return;
    const keys = changes.map((change) => this.docKey(change.doc));
    const args = changes.flatMap(({ revision, ops }) => [
      ops.length,
      revision,
      ...ops.flatMap((op) => [op.op, op.field, op.op === 'set' ? op.value : op.op === 'add' ? String(op.by) : '']),
    ]);
    await this.scripts.registryCacheApply(keys.length, ...keys, ...args);
  }

  async tryLock(doc: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.lockKey(doc), token, 'PX', Math.max(1, Math.round(ttlMs)), 'NX')) === 'OK';
  }

  async unlock(doc: string, token: string): Promise<void> {
    await this.scripts.registryCacheUnlock(this.lockKey(doc), token);
  }

  isUp(): boolean {
    return this.redis.status === 'ready';
  }

  private docKey(doc: string): string {
    return `${this.namespace}doc:${doc}`;
  }

  private lockKey(doc: string): string {
    return `${this.namespace}lock:${doc}`;
  }
}

function toStamp(revision: string | null | undefined, readAt: string | null | undefined): SharedStamp | undefined {
  if (revision === null || revision === undefined) return undefined;
  return { revision: Number(revision), readAt: Number(readAt ?? 0) };
}
