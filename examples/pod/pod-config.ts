import * as os from 'node:os';

export interface PodConfig {
  gateways: string[];
  token?: string;
  service: string;
  peerService: string;
  port: number;
  host: string;
  id: string;
  /** The address other pods use to reach this one. */
  address: string;
  ttl: number;
  zone?: string;
}

/** The example pod's environment, read once; a missing or bad value stops it with the variable's name. */
export function loadPodConfig(env: NodeJS.ProcessEnv, hostname: string): PodConfig {
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) throw new Error(`${name} is required`);
    return value;
  };
  const port = Number(required('PORT'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error('PORT must be 1-65535');
  const ttl = Number(env.TTL ?? 15);
  if (!Number.isInteger(ttl) || ttl < 5 || ttl > 300) throw new Error('TTL must be 5-300 seconds');
  return {
    gateways: required('GATEWAY_URLS').split(',').map((u) => u.trim()).filter(Boolean),
    token: env.REGISTRY_TOKEN || undefined,
    service: required('SERVICE'),
    peerService: required('PEER_SERVICE'),
    port,
    host: env.HOST ?? '0.0.0.0',
    id: env.INSTANCE_ID ?? `${hostname}-${port}`.replace(/[^A-Za-z0-9._-]/g, '-'),
    address: env.ADDRESS ?? firstExternalIPv4() ?? '127.0.0.1',
    ttl,
    zone: env.ZONE || undefined,
  };
}

function firstExternalIPv4(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    const found = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found) return found.address;
  }
  return undefined;
}
