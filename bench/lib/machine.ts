/** What the report says about the machine and the software: read at run time, never typed in. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '@app/stack';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  kernel: string;
  hostname: string;
}

export interface Versions {
  node: string;
  etcd: string;
  redis: string;
  gateway: string;
  commit: string;
  packages: Record<string, string>;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export function machineInfo(): MachineInfo {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpuModel: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    hostname: os.hostname(),
  };
}

const PACKAGES = ['@nestjs/core', '@nestjs/platform-fastify', 'fastify', 'etcd3', '@grpc/grpc-js', 'ioredis', 'prom-client', 'autocannon', 'typescript'];

function packageVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

export function versions(): Versions {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  const head = run('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    node: process.version,
    etcd: /etcd Version:\s*(\S+)/.exec(run('etcd', ['--version']))?.[1] ?? 'unknown',
    redis: /v=(\S+)/.exec(run('redis-server', ['--version']))?.[1] ?? 'unknown',
    gateway: `${pkg.name} ${pkg.version}`,
    commit: head ? `${head}${dirty ? ' (with uncommitted changes)' : ''}` : 'unknown',
    packages: Object.fromEntries(PACKAGES.map((p) => [p, packageVersion(p)])),
  };
}

/** `2c-amd-epyc`: cores and a slug of the CPU model, for the report's file name. */
export function machineShortName(m: MachineInfo): string {
  const slug = m.cpuModel
    .toLowerCase()
    .replace(/\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core/g, ' ')
    .trim()
    .split(/[^a-z0-9]+/)
    .filter(Boolean)
    .slice(0, 3)
    .join('-');
  return `${m.cores}c-${slug || 'cpu'}`;
}
