import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GATEWAY_VARIABLES, loadGatewayConfig } from './gateway-config';

/** The rows of the README's configuration table: the variables a row names and the defaults it states. */
function documentedRows(): Array<{ names: string[]; defaults: string[] | undefined; removed: boolean }> {
  const readme = readFileSync(join(__dirname, '..', '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Configuration'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration') + 1));
  const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const [names, defaults] = line.split('|').slice(1, 3);
      const stated = ticked(defaults);
      // `X_FILE` beside a secret X is the file form of X (SECRET_FILES), not a variable of its own.
      const isFileForm = (n: string) => n.endsWith('_FILE') && GATEWAY_VARIABLES.includes(n.slice(0, -'_FILE'.length));
      return {
        names: ticked(names).filter((n) => /^[A-Z][A-Z0-9_]+$/.test(n) && !isFileForm(n)),
        defaults: stated.length ? stated : undefined,
        // A row whose default says "removed" documents variables that are gone (and ignored if set).
        removed: defaults.trim() === 'removed',
      };
    });
}

describe('the README configuration table', () => {
  const rows = documentedRows();

  it('names every variable the schema reads, and nothing else (but the removed ones, which the schema must not read)', () => {
    const documented = new Set(rows.filter((row) => !row.removed).flatMap((row) => row.names));
    const removed = rows.filter((row) => row.removed).flatMap((row) => row.names);
    expect(GATEWAY_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
    expect([...documented].filter((name) => !GATEWAY_VARIABLES.includes(name))).toEqual([]);
    expect(removed.filter((name) => GATEWAY_VARIABLES.includes(name))).toEqual([]);
  });

  it('states the defaults the schema applies (rows that give one default per variable)', () => {
    const config = loadGatewayConfig({});
    // REDIS_URL has no schema default: with no Redis shape configured, the target is this URL (redis-config.ts).
    const target = config.redis.kind === 'single' ? `redis://${config.redis.endpoint.host}:${config.redis.endpoint.port}` : config.redis.kind;
    const defaults = { ...config, REDIS_URL: target } as unknown as Record<string, unknown>;
    const wrong: string[] = [];
    for (const row of rows) {
      if (!row.defaults || row.defaults.length !== row.names.length) continue;
      row.names.forEach((name, i) => {
        const actual = defaults[name];
        const shown = Array.isArray(actual) ? actual.join(',') : String(actual);
        if (shown !== row.defaults![i]) wrong.push(`${name}: README says ${row.defaults![i]}, schema gives ${shown}`);
      });
    }
    expect(wrong).toEqual([]);
  });
});
