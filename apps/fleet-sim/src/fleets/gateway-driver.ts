import { KeepAliveHttpClient, errorLabel } from '../http-client';
import { CallOutcome, FleetDriver, Resolver, SimPod } from './fleet-driver';

export type Spread = 'round-robin' | 'sticky';

/**
 * Pods talking REST to one or several gateway replicas. `round-robin` sends each call of a pod to the
 * next replica (an L4 load balancer without affinity); `sticky` pins each pod to one replica.
 */
export class GatewayDriver implements FleetDriver, Resolver {
  readonly design = 'gateway' as const;
  readonly description: string;
  private readonly clients: KeepAliveHttpClient[];

  constructor(
    urls: string[],
    private readonly ttlSeconds: number,
    callTimeoutMs: number,
    private readonly spread: Spread,
  ) {
    this.clients = urls.map((u) => new KeepAliveHttpClient(u, callTimeoutMs));
    this.description = `each pod: REST register once, then PUT .../heartbeat every tick to ${urls.length} replica(s) (${spread}); the gateway renews leases over shared streams`;
  }

  register(pod: SimPod, tick = 0): Promise<CallOutcome> {
    return this.call(pod, tick, 'PUT', instancePath(pod), {
      address: `10.${(pod.index >> 16) & 255}.${(pod.index >> 8) & 255}.${pod.index & 255}`,
      port: 8080,
      ttl: this.ttlSeconds,
      metadata: { version: '1.0.0' },
      tags: ['sim'],
      zone: `zone-${pod.index % 3}`,
    }).then((r) => {
      if (r.ok) pod.registered = true;
      return r;
    });
  }

  async beat(pod: SimPod, tick: number): Promise<CallOutcome> {
    if (!pod.registered) {
      const r = await this.register(pod, tick);
      return { ok: r.ok, outcome: r.ok ? 're-registered' : r.outcome };
    }
    const r = await this.call(pod, tick, 'PUT', `${instancePath(pod)}/heartbeat`);
    if (r.outcome === '404') pod.registered = false; // the SDK registers again on the next tick
    return r;
  }

  async resolve(service: string, n: number): Promise<CallOutcome> {
    const client = this.clients[n % this.clients.length];
    try {
      const res = await client.request('GET', `/v1/services/${service}`, undefined, true);
      return { ok: res.status === 200, outcome: String(res.status) };
    } catch (err) {
      return { ok: false, outcome: errorLabel(err) };
    }
  }

  private async call(pod: SimPod, tick: number, method: string, path: string, body?: unknown): Promise<CallOutcome> {
    const replica = this.spread === 'sticky' ? pod.index : pod.index + tick;
    const client = this.clients[replica % this.clients.length];
    try {
      const res = await client.request(method, path, body);
      return { ok: res.status >= 200 && res.status < 300, outcome: String(res.status) };
    } catch (err) {
      return { ok: false, outcome: errorLabel(err) };
    }
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
  }
}

export function instancePath(pod: SimPod): string {
  return `/v1/services/${pod.service}/instances/${pod.id}`;
}
