/**
 * The three designs under test, behind one interface, so the scenario (schedule, silence, counting)
 * is the same code for all of them and only "what one registration / one heartbeat costs" differs.
 */
export type Design = 'before' | 'after' | 'gateway';

export interface SimPod {
  readonly index: number;
  readonly service: string;
  readonly id: string;
  /** `<prefix>services/<service>/<id>`: the key the gateway would write. */
  readonly key: string;
  registered: boolean;
}

export interface CallOutcome {
  ok: boolean;
  /** Short label for the outcome table: "204", "timeout", "lease-lost", "UNAVAILABLE", ... */
  outcome: string;
}

export interface FleetDriver {
  readonly design: Design;
  /** One line for the report: how this design registers and renews. */
  readonly description: string;
  /**
   * True when registration is only the simulator's set-up (not the design under test): pods then
   * wait for the window instead of heartbeating as soon as they are registered.
   */
  readonly registrationIsSetup?: boolean;
  /** Called once before the registration phase (inside its etcd counter window). */
  prepare?(): Promise<void>;
  /** Registration before the heartbeat window (timed; not part of the heartbeat success rate). */
  register(pod: SimPod): Promise<CallOutcome>;
  /** One heartbeat tick. A pod that is not registered registers on its tick (as an SDK would). */
  beat(pod: SimPod, tick: number): Promise<CallOutcome>;
  /** Releases clients and sockets; never revokes leases (the alive check reads etcd afterwards). */
  close(): Promise<void>;
}

export interface Resolver {
  resolve(service: string, n: number): Promise<CallOutcome>;
}

export function instanceValue(pod: SimPod, ttlSeconds: number): string {
  return JSON.stringify({
    service: pod.service,
    id: pod.id,
    address: `10.${(pod.index >> 16) & 255}.${(pod.index >> 8) & 255}.${pod.index & 255}`,
    port: 8080,
    ttl: ttlSeconds,
    metadata: { version: '1.0.0' },
    tags: ['sim'],
    weight: 100,
    status: 'UP',
    registeredAt: new Date().toISOString(),
  });
}

/** Rejects with Error("timeout") after `ms`, calling `onTimeout` (e.g. to close the client). */
export function withTimeout<T>(ms: number, task: Promise<T>, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error('timeout'));
    }, ms);
  });
  return Promise.race([task, timeout]).finally(() => clearTimeout(timer));
}

/** Outcome label of an etcd3/grpc error: the etcd3 error class or "timeout". */
export function grpcErrorLabel(err: unknown): string {
  const e = err as { message?: string; constructor?: { name?: string } };
  if (e?.message === 'timeout') return 'timeout';
  const name = e?.constructor?.name;
  if (name && name !== 'Error') return name.replace(/^(GRPC|Etcd)/, '').replace(/Error$/, '') || name;
  return e?.message?.slice(0, 40) ?? 'error';
}
