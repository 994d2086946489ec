/** The default report's chart: etcd Authenticate calls and heartbeat success per design vs pods. */
import { Panel, renderChart } from './chart';
import { BenchData, authCalls } from './report';
import { Design, FleetRun } from './sim-results';

export function fleetChart(d: BenchData): string {
  const colors: Record<Design, string> = { before: '#d62728', after: '#ff7f0e', gateway: '#2ca02c' };
  const names: Record<Design, string> = { before: 'before: fresh client per beat', after: 'after: client per pod', gateway: 'gateway (pool of 2)' };
  const designs: Design[] = ['before', 'after', 'gateway'];
  const dashes: Record<Design, string | undefined> = { before: undefined, after: '7 5', gateway: undefined };
  const series = (y: (r: FleetRun) => number) =>
    designs.map((des) => ({
      name: names[des],
      color: colors[des],
      dash: dashes[des],
      points: d.fleet.filter((f) => f.result.design === des).map((f) => ({ x: f.result.params.pods, y: y(f) })),
    }));
  const panels: Panel[] = [
    { title: 'etcd Authenticate calls (whole scenario)', yLabel: 'Authenticate calls (log scale)', scale: 'log', series: series(authCalls) },
    { title: 'Heartbeat success', yLabel: 'ticks confirmed / scheduled (%)', scale: 'percent', series: series((f) => f.result.heartbeats.successRate * 100) },
  ];
  const s = d.settings;
  const subtitle = `heartbeat every ${s.intervalSeconds} s for ${s.durationSeconds} s, TTL ${s.ttlSeconds} s, etcd ${d.versions.etcd} with auth, ${d.machine.cores} cores (${d.machine.cpuModel}); ${d.startedAt.toISOString().slice(0, 10)}`;
  return renderChart('etcd Authenticate calls and heartbeat success vs. pods', subtitle, s.pods, panels);
}
