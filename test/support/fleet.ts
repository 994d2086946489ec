/**
 * Many simulated pods from the test process: keep-alive HTTP with bounded concurrency, so 2000 pods
 * heartbeating every second cost the test a few sockets, not thousands.
 */
import * as http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface Pod {
  service: string;
  id: string;
}

export function pods(services: number, perService: number, prefix = 'svc'): Pod[] {
  const out: Pod[] = [];
  for (let s = 0; s < services; s++) for (let i = 0; i < perService; i++) out.push({ service: `${prefix}-${s}`, id: `pod-${s}-${i}` });
  return out;
}

export function request(baseUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const url = new URL(path, baseUrl);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Runs `task` for every item with at most `concurrency` in flight; returns the results in order. */
export async function forEachLimited<T, R>(items: T[], concurrency: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i]);
      }
    }),
  );
  return results;
}

export const registerPod = (url: string, pod: Pod, ttl = 10) =>
  request(url, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}`, { address: '10.0.0.1', port: 8080, ttl });
export const heartbeatPod = (url: string, pod: Pod) => request(url, 'PUT', `/v1/services/${pod.service}/instances/${pod.id}/heartbeat`);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function closeFleetAgent(): void {
  agent.destroy();
}
