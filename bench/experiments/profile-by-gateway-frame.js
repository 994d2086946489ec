/**
 * Where a replica's CPU went, by the gateway code responsible: over the busiest window of a V8
 * .cpuprofile, each sample goes to the nearest frame of the gateway's own build on its stack
 * (dist/apps/gateway/{libs,apps}), shown with the owner of the leaf frame (a package, Node's core,
 * or a V8 pseudo-frame such as the garbage collector). A sample with no gateway frame on its stack
 * is Node, Fastify or grpc-js working on their own (HTTP parsing, socket I/O, timers).
 *
 *   node bench/experiments/profile-by-gateway-frame.js FILE.cpuprofile [WINDOW_SECONDS=3]
 */
const fs = require('node:fs');

const [file, windowSeconds = '3'] = process.argv.slice(2);
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map();
for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);

let clock = 0;
const times = profile.samples.map((_, i) => (clock += profile.timeDeltas[i]));
const isIdle = profile.samples.map((id) => nodes.get(id).callFrame.functionName === '(idle)');

/** The window of WINDOW_SECONDS with the fewest idle samples: [first, end). */
function busiestWindow() {
  const width = Number(windowSeconds) * 1e6;
  let best = { busy: -1, first: 0, end: 0 };
  let end = 0;
  let busy = 0;
  for (let first = 0; first < times.length; first++) {
    while (end < times.length && times[end] - times[first] < width) busy += isIdle[end++] ? 0 : 1;
    if (busy > best.busy) best = { busy, first, end };
    busy -= isIdle[first] ? 0 : 1;
  }
  return best;
}

function gatewayFrame(url) {
  const lib = url.match(/dist\/apps\/gateway\/libs\/(.*)$/);
  if (lib) return 'gateway libs/' + lib[1].replace('/src/', '/');
  const app = url.match(/dist\/apps\/gateway\/apps\/gateway\/src\/(.*)$/);
  return app ? 'gateway app ' + app[1] : undefined;
}

function leafOwner(callFrame) {
  const pkg = callFrame.url.match(/node_modules\/((@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  return callFrame.url.startsWith('node:') ? 'node core' : callFrame.functionName;
}

const { first, end } = busiestWindow();
const byFrame = new Map();
const byFrameAndLeaf = new Map();
for (let i = first; i < end; i++) {
  let frame = '(no gateway frame)';
  for (let id = profile.samples[i]; id !== undefined; id = parentOf.get(id)) {
    const found = gatewayFrame(nodes.get(id).callFrame.url);
    if (found) {
      frame = found;
      break;
    }
  }
  const detail = `${frame}  <leaf: ${leafOwner(nodes.get(profile.samples[i]).callFrame)}>`;
  byFrame.set(frame, (byFrame.get(frame) ?? 0) + 1);
  byFrameAndLeaf.set(detail, (byFrameAndLeaf.get(detail) ?? 0) + 1);
}

const samples = end - first;
const print = (map, top) => {
  for (const [key, count] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * count) / samples).toFixed(1).padStart(5)} %  ${key}`);
};
console.log(`window ${(times[first] / 1e6).toFixed(1)}-${(times[end - 1] / 1e6).toFixed(1)} s of the profile, ${samples} samples`);
console.log('\nby nearest gateway frame:');
print(byFrame, 25);
console.log('\nby nearest gateway frame and leaf owner:');
print(byFrameAndLeaf, 40);
