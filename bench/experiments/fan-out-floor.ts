/**
 * The floor under the blocking-queries fan-out (bench/blocking-queries.ts): what answering N held
 * HTTP requests at once costs on this machine with nothing of the gateway behind them. A child
 * process holds N GET requests, each on its own connection as in the bench, and on `POST /release`
 * answers all of them with one shared Buffer (the gateway's resolve answer for one small service,
 * same headers); this process reads them exactly as the bench's client does (node:http, JSON.parse).
 *
 *   node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/experiments/fan-out-floor.ts \
 *     [--held 2000] [--server node|fastify] [--runs 3]
 *
 * --server node     plain node:http (res.writeHead + res.end): the floor of Node's HTTP stack
 * --server fastify  a bare Fastify route (reply.header().send(buffer)), no hooks: Fastify's share
 * Latency is "release sent -> answer read" (no etcd, no watch); CPU of the server and of this client
 * over the same span (/proc and process.cpuUsage), with the whole machine's for comparison.
 */
import { fork } from 'node:child_process';
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { freePort } from '@app/stack';
import { readMachine, readProcess } from '../../apps/fleet-sim/src/process-sampler';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const { values } = parseArgs({
  options: {
    held: { type: 'string', default: '2000' },
    server: { type: 'string', default: 'node' },
    runs: { type: 'string', default: '3' },
    'serve-port': { type: 'string' },
  },
});

/** A resolve answer of the shape the gateway sends for a service of a few instances. */
function answerBody(): Buffer {
  const instance = (id: string) => ({ id, address: '10.0.0.1', port: 8080, metadata: {}, tags: [], weight: 1, status: 'UP', registeredAt: '2026-12-08T00:00:00.000Z' });
  return Buffer.from(JSON.stringify({ service: 'watched', revision: '42', stale: false, instances: [instance('fan-out'), instance('seed')] }));
}

/** The child: holds every GET until POST /release, then answers them all in one turn. */
async function serve(port: number, kind: string): Promise<void> {
  const body = answerBody();
  const held: Array<(buf: Buffer) => void> = [];
  let requestId = 0;
  const headers = (id: number) => ({ 'content-type': 'application/json; charset=utf-8', 'x-registry-index': '42', 'x-request-id': `req-${id}` });
  const releaseAll = () => {
    const waiting = held.splice(0);
    for (const answer of waiting) answer(body);
  };
  if (kind === 'fastify') {
    const fastify = (await import('fastify')).default({ logger: false });
    fastify.get('/held', async () => ({ held: held.length }));
    fastify.post('/release', async () => {
      setImmediate(releaseAll);
      return { ok: true };
    });
    fastify.get('/v1/services/:service', (request, reply) => {
      const id = ++requestId;
      held.push((buf) => void reply.headers(headers(id)).send(buf));
    });
    await fastify.listen({ port, host: '127.0.0.1' });
  } else {
    const server = http.createServer((req, res) => {
      if (req.url === '/held') return void res.end(JSON.stringify({ held: held.length }));
      if (req.url === '/release') {
        res.end('{"ok":true}');
        return void setImmediate(releaseAll);
      }
      const id = ++requestId;
      held.push((buf) => {
        res.writeHead(200, { ...headers(id), 'content-length': buf.length });
        res.end(buf);
      });
    });
    server.listen(port, '127.0.0.1');
  }
  process.send?.('ready');
}

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function get(url: string): Promise<{ at: number; body: { instances: unknown[] } }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ at: performance.now(), body: JSON.parse(text) }));
      })
      .on('error', reject);
  });
}

async function oneRun(base: string, serverPid: number, count: number) {
  const answers: Array<Promise<{ at: number }>> = [];
  while (answers.length < count) {
    for (let i = 0; i < Math.min(250, count - answers.length); i++) answers.push(get(`${base}/v1/services/watched?index=41&wait=10m`));
    for (;;) {
      const { body } = (await get(`${base}/held`)) as unknown as { body: { held: number } };
      if (body.held === answers.length) break;
      await sleep(50);
    }
  }
  await sleep(1000);
  const before = { server: readProcess(serverPid), client: process.cpuUsage(), machine: readMachine() };
  const sentAt = performance.now();
  await new Promise<void>((resolve, reject) => http.request(`${base}/release`, { method: 'POST', agent }, (res) => res.resume().on('end', resolve)).on('error', reject).end());
  const got = await Promise.all(answers);
  const wallMs = performance.now() - sentAt;
  const client = process.cpuUsage(before.client);
  const latencies = got.map((g) => g.at - sentAt).sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)];
  return {
    p50: pct(50),
    p99: pct(99),
    max: latencies.at(-1)!,
    serverCpuMs: ((readProcess(serverPid)?.cpuSeconds ?? NaN) - (before.server?.cpuSeconds ?? NaN)) * 1000,
    clientCpuMs: (client.user + client.system) / 1000,
    machineCpuMs: ((readMachine()?.cpuSeconds ?? NaN) - (before.machine?.cpuSeconds ?? NaN)) * 1000,
    wallMs,
  };
}

async function main(): Promise<void> {
  if (values['serve-port']) return serve(Number(values['serve-port']), values.server!);
  const count = Number(values.held);
  const rows: string[] = [];
  for (let run = 1; run <= Number(values.runs); run++) {
    const port = await freePort();
    const child = fork(__filename, ['--serve-port', String(port), '--server', values.server!], { execArgv: process.execArgv });
    await new Promise((resolve) => child.once('message', resolve));
    try {
      const r = await oneRun(`http://127.0.0.1:${port}`, child.pid!, count);
      const f = (v: number) => v.toFixed(1);
      rows.push(`| ${values.server} | ${count} | ${f(r.p50)} / ${f(r.p99)} / ${f(r.max)} | ${f(r.serverCpuMs)} / ${f(r.clientCpuMs)} / ${f(r.machineCpuMs)} in ${f(r.wallMs)} |`);
      process.stderr.write(`[fan-out-floor] ${rows.at(-1)}\n`);
    } finally {
      child.kill();
    }
  }
  process.stdout.write(`| server | held | latency release -> answer read, ms (p50 / p99 / max) | CPU ms: server / client / machine, in wall ms |\n| --- | --- | --- | --- |\n${rows.join('\n')}\n`);
  agent.destroy();
}

main().catch((err: Error) => {
  process.stderr.write(`[fan-out-floor] failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
