/**
 * Where a V8 CPU profile's time went, grouped by who owns the code (grpc-js, protobufjs, Node's
 * own JS, the experiment's busy loop, ...) and by function:
 *   node -r ts-node/register/transpile-only bench/experiments/profile-summary.ts FILE.cpuprofile [TOP]
 */
import * as fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const AREAS: Array<[string, RegExp]> = [
  ['idle (waiting in epoll)', /^\(idle\)/],
  ['busy loop (the simulated request work)', /^(turn|now) .*(keepalive-starvation|:0$)/],
  ['grpc-js', /@grpc\/grpc-js/],
  ['protobufjs / long', /protobufjs|proto-loader|long\//],
  ['experiment pump', /experiments\/keepalive-pump/],
  ['Node internals (JS: streams, http2, timers)', /node:/],
  ['V8/native (program, GC)', /^\((program|garbage collector)\)/],
  // Profiler.stop serialises the profile synchronously inside the window it closes.
  ['inspector (collecting this profile)', /^dispatch :0$/],
];

function main(): void {
  const [file, topArg] = process.argv.slice(2);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url.replace(/^.*node_modules\//, '').replace(/^.*\/(bench|libs|tools)\//, '$1/');
    const key = `${frame.functionName || '(anonymous)'} ${where}${where ? `:${frame.lineNumber + 1}` : ':0'}`;
    const dt = profile.timeDeltas[i] ?? 0;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    total += dt;
  });
  const areas = new Map<string, number>();
  for (const [key, us] of selfUs) {
    const area = AREAS.find(([, re]) => re.test(key))?.[0] ?? 'other';
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
  for (const [area, us] of sorted(areas)) process.stdout.write(`${pct(us)}  ${area}\n`);
  process.stdout.write('top functions (self time):\n');
  for (const [key, us] of sorted(selfUs).slice(0, Number(topArg ?? 15))) process.stdout.write(`${pct(us)}  ${key}\n`);
}

main();
