/**
 * Two V8 heap snapshots compared by what holds the bytes: self size summed per node type and
 * constructor (objects), per type (strings, code, arrays, ...), largest differences first.
 *
 *   node --max-old-space-size=4096 -r ts-node/register/transpile-only bench/experiments/heap-by-constructor.ts \
 *     BEFORE.heapsnapshot AFTER.heapsnapshot [TOP]
 *
 * Snapshots come from bench/lib/memory-report.js (SIGUSR2 on a gateway started with it preloaded)
 * or `node --heapsnapshot-signal`. Self sizes only: what each object holds itself, not what it keeps alive.
 */
import * as fs from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** bytes and object count per `type:name` (object types keep their constructor name; others their type). */
function summarize(file: string): Map<string, { bytes: number; count: number }> {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const byKey = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]];
    // Strings, code, arrays etc. are grouped by type (their "name" is their content or a label).
    const key = type === 'object' || type === 'closure' ? `${type}:${snap.strings[snap.nodes[i + nameAt]]}` : type;
    const entry = byKey.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += snap.nodes[i + sizeAt];
    entry.count++;
    byKey.set(key, entry);
  }
  return byKey;
}

function main(): void {
  const [beforeFile, afterFile, topArg] = process.argv.slice(2);
  const before = summarize(beforeFile);
  const after = summarize(afterFile);
  const total = (m: Map<string, { bytes: number }>) => [...m.values()].reduce((n, e) => n + e.bytes, 0);
  const mb = (bytes: number) => (bytes / 1e6).toFixed(2).padStart(8);
  process.stdout.write(`total self size: before ${mb(total(before))} MB, after ${mb(total(after))} MB\n`);
  process.stdout.write(`${'before MB'.padStart(9)} ${'after MB'.padStart(8)} ${'diff MB'.padStart(8)} ${'count before'.padStart(12)} ${'after'.padStart(8)}  type:constructor\n`);
  const keys = new Set([...before.keys(), ...after.keys()]);
  const rows = [...keys].map((key) => ({ key, b: before.get(key) ?? { bytes: 0, count: 0 }, a: after.get(key) ?? { bytes: 0, count: 0 } }));
  rows.sort((x, y) => Math.abs(y.a.bytes - y.b.bytes) - Math.abs(x.a.bytes - x.b.bytes));
  for (const { key, b, a } of rows.slice(0, Number(topArg ?? 40))) {
    process.stdout.write(`${mb(b.bytes)} ${mb(a.bytes)} ${mb(a.bytes - b.bytes)} ${String(b.count).padStart(12)} ${String(a.count).padStart(8)}  ${key}\n`);
  }
  process.stdout.write('largest in after:\n');
  for (const { key, b, a } of [...rows].sort((x, y) => y.a.bytes - x.a.bytes).slice(0, 15)) {
    process.stdout.write(`${mb(b.bytes)} ${mb(a.bytes)} ${mb(a.bytes - b.bytes)} ${String(b.count).padStart(12)} ${String(a.count).padStart(8)}  ${key}\n`);
  }
}

main();
