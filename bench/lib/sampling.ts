/**
 * Readings the orchestrator takes around scenarios: how busy the machine is, and etcd's counters
 * (an etcd starved by bcrypt answers /metrics slowly, hence the retries).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { EtcdCounters, fetchEtcdCounters } from '@app/stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Busy CPU of the whole machine over `ms` (100 = one core), from /proc/stat. */
export async function machineBusyPercent(ms: number): Promise<number> {
  const read = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + f[4];
    return { busy: f.reduce((a, b) => a + b, 0) - idle - (f[8] ?? 0) - (f[9] ?? 0), at: Date.now() };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return Math.round(((b.busy - a.busy) / 100 / ((b.at - a.at) / 1000)) * 100);
}

/** 1/5/15-minute load averages, two decimals: the report quotes them for every scenario. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = os.loadavg().map((x) => Math.round(x * 100) / 100);
  return [a, b, c];
}

export async function etcdCounters(metricsUrl: string): Promise<EtcdCounters> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchEtcdCounters(metricsUrl, 20_000);
    } catch (err) {
      if (attempt >= 4) throw err;
      await sleep(1000);
    }
  }
}

/**
 * Waits until etcd has no Authenticate left over from the previous scenario (etcd finishes every
 * bcrypt check it started, even for clients long gone). Returns a note if it gave up.
 */
export async function waitForIdleEtcd(metricsUrl: string, maxMs = 90_000): Promise<string | undefined> {
  const started = Date.now();
  for (;;) {
    const c = await fetchEtcdCounters(metricsUrl, 5_000).catch(() => undefined);
    if (c && c.authenticateStarted === c.authenticate) return undefined;
    if (Date.now() - started > maxMs) return `etcd was still busy with earlier Authenticate calls when this scenario started (waited ${Math.round(maxMs / 1000)} s)`;
    await sleep(500);
  }
}
