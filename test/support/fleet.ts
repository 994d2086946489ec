/**
 * Many simulated pods from the test process, through the shared keep-alive client (test/support/http),
 * with bounded concurrency: 2000 pods heartbeating every second cost the test a few sockets, not thousands.
 */
import { request } from './http';

/** The shared client's `request`, still importable from here: tests being written elsewhere do. */
export { request };

export interface Pod {
  service: string;
  id: string;
}

export function pods(services: number, perService: number, prefix = 'svc'): Pod[] {
  const out: Pod[] = [];
  for (let s = 0; s < services; s++) for (let i = 0; i < perService; i++) out.push({ service: `${prefix}-${s}`, id: `pod-${s}-${i}` });
  return out;
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
