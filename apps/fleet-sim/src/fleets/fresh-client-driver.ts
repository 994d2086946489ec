import { Etcd3 } from 'etcd3';
import { EtcdTarget, etcdClient } from '../etcd-probe';
import { grantAndPut, keepAliveOnce } from './etcd-calls';
import { CallOutcome, FleetDriver, SimPod, grpcErrorLabel, instanceValue, withTimeout } from './fleet-driver';

/**
 * *before*: the design that failed in production. Every heartbeat creates a new authenticated etcd
 * client (one Authenticate: bcrypt + a raft round trip in etcd), renews the pod's lease with one
 * KeepAliveOnce and closes the client. A lease found gone is registered again on the next tick.
 * The initial registration goes through one shared client: only the heartbeats are the subject here.
 */
export class FreshClientPerBeatDriver implements FleetDriver {
  readonly design = 'before' as const;
  readonly description =
    'each heartbeat: new authenticated etcd3 client + one KeepAliveOnce, then close (initial registration through one shared client)';
  readonly registrationIsSetup = true;
  private readonly setupClient: Etcd3;
  private readonly leases = new Map<number, string>();

  constructor(
    private readonly target: EtcdTarget,
    private readonly ttlSeconds: number,
    private readonly callTimeoutMs: number,
    private readonly registerTimeoutMs: number,
    private readonly keyPrefix: string,
  ) {
    this.setupClient = etcdClient(target);
  }

  /**
   * etcd3 authenticates once per concurrent first call (64 registrations at once cost ~16
   * Authenticate calls): one call first, so the shared client costs exactly one.
   */
  async prepare(): Promise<void> {
    await this.setupClient.get(`${this.keyPrefix}services/`).string();
  }

  async register(pod: SimPod): Promise<CallOutcome> {
    try {
      const leaseId = await withTimeout(this.registerTimeoutMs, grantAndPut(this.setupClient, pod.key, instanceValue(pod, this.ttlSeconds), this.ttlSeconds));
      this.leases.set(pod.index, leaseId);
      pod.registered = true;
      return { ok: true, outcome: 'registered' };
    } catch (err) {
      return { ok: false, outcome: grpcErrorLabel(err) };
    }
  }

  async beat(pod: SimPod): Promise<CallOutcome> {
    const client = etcdClient(this.target);
    try {
      return await withTimeout(this.callTimeoutMs, this.beatWith(client, pod), () => client.close());
    } catch (err) {
      return { ok: false, outcome: grpcErrorLabel(err) };
    } finally {
      client.close();
    }
  }

  private async beatWith(client: Etcd3, pod: SimPod): Promise<CallOutcome> {
    const leaseId = this.leases.get(pod.index);
    if (!leaseId) {
      this.leases.set(pod.index, await grantAndPut(client, pod.key, instanceValue(pod, this.ttlSeconds), this.ttlSeconds));
      pod.registered = true;
      return { ok: true, outcome: 're-registered' };
    }
    const ttl = await keepAliveOnce(client, leaseId);
    if (ttl <= 0) {
      this.leases.delete(pod.index);
      pod.registered = false;
      return { ok: false, outcome: 'lease-lost' };
    }
    return { ok: true, outcome: 'renewed' };
  }

  async close(): Promise<void> {
    this.setupClient.close();
  }
}
