/**
 * Node agents heartbeat the pods of their node: agent `a` owns pods [a·perAgent, (a+1)·perAgent)
 * and, every interval, sends one `POST /v1/heartbeats` naming each of them that is registered (at
 * most 1,000 refs, the route's limit), always to the same replica (agent `a` -> replica a mod R).
 * The answer says per ref what became of it (`accepted`, `not_found`, ...), in request order; a ref
 * answered `not_found` registers again at once through the registration pool, as an agent would.
 *
 * An agent includes a pod only once its registration was answered `graceMs` ago: the pod registered
 * through another replica (sticky by pod index), and a replica that has not yet seen the put on its
 * watch answers `not_found` (README, "Shared leases"). A real agent learns of a pod some time after
 * it starts; without the grace the race with the watch (milliseconds) is what would be counted.
 *
 * `silence(fraction)` takes an evenly spread fraction of every agent's pods out of its batches (the
 * pods died): the scenario then watches them disappear from etcd. `lastAccepted` keeps, per pod, when
 * the last batch that was answered `accepted` for it was sent: the moment the gateway last heard it.
 */
import { HEARTBEAT_BATCH_LIMITS } from '@app/registry';
import { isSilent } from './fleet-scenario';
import { GatewayDriver } from './fleets/gateway-driver';
import { HeartbeatEvents, HeartbeatSource, PhaseBeats } from './heartbeat-source';
import { PodTable } from './pod-table';
import { sleep } from './progress';
import { RawHttpPool } from './raw-http';
import { BeatSchedule } from './results';
import { OpRecorder } from './stats';
import { TimingWheel } from './timing-wheel';

export interface NodeAgentOptions {
  agents: number;
  intervalSeconds: number;
  /** A pod joins its agent's batches this long after its registration was answered. */
  graceMs: number;
  callTimeoutMs: number;
  /** Replica URLs; agent a talks to gateways[a % length]. */
  gateways: string[];
}

const WHEEL_TICK_MS = 10;
const RESULT_MARK = Buffer.from('"result":"', 'latin1');
const QUOTE = 0x22;

/**
 * Calls `fn(k, result)` for the k-th `"result":"..."` of a `POST /v1/heartbeats` answer (results come
 * in request order), without parsing the JSON: 1,000 results are ~60 KB, 100 answers/s at 1M pods.
 * Returns how many results it found. Service and id names cannot contain `"`, so the mark is unambiguous.
 */
export function scanBatchResults(body: Buffer, fn: (k: number, result: string) => void): number {
  let k = 0;
  let at = body.indexOf(RESULT_MARK);
  while (at >= 0) {
    const from = at + RESULT_MARK.length;
    const to = body.indexOf(QUOTE, from);
    if (to < 0) break;
    fn(k++, body.toString('latin1', from, to));
    at = body.indexOf(RESULT_MARK, to + 1);
  }
  return k;
}

/** Pods per agent for `pods` spread over `agents`; throws if that passes the batch limit. */
export function podsPerAgent(pods: number, agents: number): number {
  const per = Math.ceil(pods / agents);
  const max = HEARTBEAT_BATCH_LIMITS.maxInstances;
  if (per > max) throw new Error(`${pods} pods over ${agents} agents is ${per} refs per batch, over the limit of ${max}: use more agents`);
  return per;
}

export class NodeAgents implements HeartbeatSource {
  readonly perAgent: number;
  /** When the last batch answered `accepted` for the pod was sent (ms); 0 = never. */
  readonly lastAccepted: Float64Array;
  private silenced: Uint8Array | undefined;
  private readonly intervalMs: number;
  private readonly pools: RawHttpPool[];
  private readonly wheel = new TimingWheel(WHEEL_TICK_MS);
  private readonly nextTick: Float64Array;
  private readonly outstanding: Uint8Array;
  private readonly timer: NodeJS.Timeout;
  private started = false;
  private stopAt = Infinity;
  private inFlight = 0;
  private reRegistering = 0;
  private rec = new OpRecorder();
  private schedule: BeatSchedule = { scheduled: 0, sent: 0, written: 0, answered: 0 };
  private refs = new Map<string, number>();
  private written0 = 0;

  constructor(
    private readonly table: PodTable,
    private readonly driver: GatewayDriver,
    private readonly o: NodeAgentOptions,
    private readonly events: HeartbeatEvents,
  ) {
    this.perAgent = podsPerAgent(table.count, o.agents);
    this.intervalMs = o.intervalSeconds * 1000;
    this.lastAccepted = new Float64Array(table.count);
    this.nextTick = new Float64Array(o.agents);
    this.outstanding = new Uint8Array(o.agents);
    // An agent is one client; the agents of a replica share at most 64 sockets (a batch takes ~1 ms).
    const sockets = Math.min(64, Math.ceil(o.agents / o.gateways.length));
    this.pools = o.gateways.map((u) => new RawHttpPool(u, { sockets, timeoutMs: o.callTimeoutMs }));
    this.timer = setInterval(() => this.wheel.due(Date.now(), (a) => this.tick(a)), WHEEL_TICK_MS);
  }

  /** Agents start ticking with the first registration (each at its own phase of the interval). */
  registered(_i: number): void {
    if (this.started || this.intervalMs <= 0) return;
    this.started = true;
    const now = Date.now();
    for (let a = 0; a < this.o.agents; a++) {
      this.nextTick[a] = now + Math.random() * this.intervalMs;
      this.wheel.schedule(a, this.nextTick[a]);
    }
  }

  /** Takes an evenly spread `fraction` of every agent's pods out of its batches; returns how many. */
  silence(fraction: number): number {
    const silenced = (this.silenced ??= new Uint8Array(this.table.count));
    let n = 0;
    for (let i = 0; i < this.table.count; i++) {
      if (isSilent(i % this.perAgent, fraction)) {
        silenced[i] = 1;
        n++;
      }
    }
    return n;
  }

  isSilenced(i: number): boolean {
    return this.silenced?.[i] === 1;
  }

  beginPhase(): void {
    this.rec = new OpRecorder();
    this.schedule = { scheduled: 0, sent: 0, written: 0, answered: 0 };
    this.refs = new Map();
    this.written0 = this.written;
  }

  endPhase(_t0: number, _t1: number, seconds: number): PhaseBeats {
    this.schedule.written = this.written - this.written0;
    const refs = Object.fromEntries([...this.refs.entries()].sort((a, b) => b[1] - a[1]));
    return { beats: this.rec.summarize(seconds), beatSchedule: this.schedule, renewalsDue: 0, refs };
  }

  progress(): string {
    return `batches ok ${this.rec.okCount} failed ${this.rec.failedCount}, refs accepted ${this.refs.get('accepted') ?? 0} not_found ${this.refs.get('not_found') ?? 0}`;
  }

  async stop(maxWaitMs: number): Promise<string[]> {
    this.stopAt = Date.now();
    clearInterval(this.timer);
    for (let waited = 0; this.inFlight + this.reRegistering > 0 && waited < maxWaitMs; waited += 100) await sleep(100);
    const notes = this.inFlight > 0 ? [`${this.inFlight} agent batches were still unanswered ${maxWaitMs / 1000} s after the end`] : [];
    if (this.reRegistering > 0) notes.push(`${this.reRegistering} re-registrations after not_found were still unanswered ${maxWaitMs / 1000} s after the end`);
    for (const p of this.pools) p.close();
    return notes;
  }

  private get written(): number {
    return this.pools.reduce((n, p) => n + p.written, 0);
  }

  private static count(tally: Map<string, number>, label: string, n: number): void {
    tally.set(label, (tally.get(label) ?? 0) + n);
  }

  private tick(a: number): void {
    const tick = this.nextTick[a];
    if (tick >= this.stopAt) return;
    this.nextTick[a] = tick + this.intervalMs;
    this.wheel.schedule(a, tick + this.intervalMs);
    // A batch counts in the phase it was due in, its refs too (the answer may come in the next one).
    const rec = this.rec;
    const tally = this.refs;
    const schedule = this.schedule;
    schedule.scheduled++;
    // An agent sends its next batch only once the last one is answered (a ticker that drops ticks).
    if (this.outstanding[a]) return rec.recordMissed();
    const { refs, body } = this.batch(a, Date.now() - this.o.graceMs);
    if (refs.length === 0) return rec.recordMissed('nothing to send');
    this.outstanding[a] = 1;
    this.inFlight++;
    schedule.sent++;
    const pool = this.pools[a % this.pools.length];
    const sentAt = Date.now();
    pool.send(pool.jsonRequestBytes('POST', '/v1/heartbeats', body), (err, status, _retryAfter, answer) => {
      this.outstanding[a] = 0;
      this.inFlight--;
      schedule.answered++;
      // From the tick, as a pod's heartbeat: time spent waiting for a socket counts.
      const latency = Date.now() - tick;
      if (err !== undefined || status !== 200 || !answer) {
        const label = err ?? (status === 200 ? 'unframed answer' : String(status));
        rec.record(false, label, latency);
        return NodeAgents.count(tally, `batch ${label}`, refs.length);
      }
      const found = scanBatchResults(answer, (k, result) => {
        if (k >= refs.length) return;
        const i = refs[k];
        if (result === 'accepted') this.lastAccepted[i] = sentAt;
        else if (result === 'not_found') this.notFound(i);
        NodeAgents.count(tally, result, 1);
      });
      rec.record(found === refs.length, found === refs.length ? '200' : `200 with ${found} of ${refs.length} results`, latency);
    });
  }

  /** The refs agent `a` names now: its registered, not silenced pods registered before `registeredBy`. */
  private batch(a: number, registeredBy: number): { refs: Int32Array; body: string } {
    const t = this.table;
    const from = a * this.perAgent;
    const to = Math.min(t.count, from + this.perAgent);
    const picked = new Int32Array(to - from);
    let n = 0;
    let body = '{"instances":[';
    for (let i = from; i < to; i++) {
      if (t.registered[i] !== 1 || t.registeredAt[i] > registeredBy || this.silenced?.[i] === 1) continue;
      body += `${n ? ',' : ''}{"service":"${t.service(i)}","id":"${t.id(i)}"}`;
      picked[n++] = i;
    }
    return { refs: picked.subarray(0, n), body: body + ']}' };
  }

  private notFound(i: number): void {
    if (this.table.registered[i] !== 1) return; // already registering again
    this.table.registered[i] = 0;
    this.events.lost(i);
    if (Date.now() >= this.stopAt) return;
    this.reRegistering++;
    void this.driver.register(this.table.pod(i)).then((r) => {
      this.reRegistering--;
      if (!r.ok) return;
      this.table.markRegistered(i, Date.now());
      this.events.reRegistered(i);
    });
  }
}
