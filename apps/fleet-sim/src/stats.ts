/** Client-side figures of one kind of call: outcomes by status and a latency distribution. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface OpStats {
  attempted: number;
  ok: number;
  failed: number;
  /** Outcome label -> count, e.g. {"204": 2980, "timeout": 20}. */
  outcomes: Record<string, number>;
  /** Milliseconds, over every completed or timed-out call. */
  latency: LatencySummary;
  /** Successful calls per second of the phase they ran in. */
  okPerSecond: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Records every latency (a few hundred thousand numbers at most per run: cheap to keep and sort). */
export class OpRecorder {
  private latencies: number[] = [];
  private readonly outcomes = new Map<string, number>();
  private ok = 0;
  private failed = 0;

  record(ok: boolean, outcome: string, latencyMs: number): void {
    if (ok) this.ok++;
    else this.failed++;
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    this.latencies.push(latencyMs);
  }

  /** A call that was never made (a tick skipped while the previous call was still running). */
  recordMissed(outcome = 'missed'): void {
    this.failed++;
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  get okCount(): number {
    return this.ok;
  }

  get failedCount(): number {
    return this.failed;
  }

  summarize(seconds: number): OpStats {
    const sorted = Float64Array.from(this.latencies).sort();
    const sum = this.latencies.reduce((a, b) => a + b, 0);
    return {
      attempted: this.ok + this.failed,
      ok: this.ok,
      failed: this.failed,
      outcomes: Object.fromEntries([...this.outcomes.entries()].sort((a, b) => b[1] - a[1])),
      latency: {
        count: sorted.length,
        p50: round(percentile(sorted, 50)),
        p99: round(percentile(sorted, 99)),
        max: round(sorted.length ? sorted[sorted.length - 1] : 0),
        mean: round(sorted.length ? sum / sorted.length : 0),
      },
      okPerSecond: seconds > 0 ? round(this.ok / seconds) : 0,
    };
  }
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A comparison made of alternating rounds (yardstick, then the gateway, round after round). */
export interface PairedRounds {
  /** gateway / yardstick of each round, in run order. */
  ratios: number[];
  /** The median of `ratios` (the mean of the middle two for an even count): the comparison's figure. */
  ratio: number;
  /** The round whose ratio is the (lower) median: the pair a report shows as representative. */
  medianRound: number;
}

/**
 * Compares `gateway[i]` with `yardstick[i]` round by round and takes the median ratio. Why not each
 * side's best round: on a machine whose cores are shared, the load of other work changes between
 * rounds, and two rounds run back to back see nearly the same machine; a burst then costs one pair,
 * and the figure does not depend on which side happened to get a quiet round.
 */
export function pairedRounds(yardstick: readonly number[], gateway: readonly number[]): PairedRounds {
  if (yardstick.length !== gateway.length || yardstick.length === 0) throw new Error(`paired rounds need as many rounds of each (got ${yardstick.length} and ${gateway.length})`);
  const ratios = yardstick.map((base, i) => (base > 0 ? gateway[i] / base : 0));
  const order = ratios.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0]);
  const mid = (order.length - 1) >> 1;
  const ratio = order.length % 2 ? order[mid][0] : (order[mid][0] + order[mid + 1][0]) / 2;
  return { ratios: ratios.map((r) => round(r, 3)), ratio: round(ratio, 3), medianRound: order[mid][1] };
}
