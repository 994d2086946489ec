/**
 * Example pod: a plain Node HTTP server that registers itself with the registry gateway through the
 * SDK (heartbeats, failover and deregistration on SIGTERM/SIGINT are the SDK's job), and finds its
 * peer service with a resolver watch. Runs against `npm start`:
 *
 *   GATEWAY_URLS=http://127.0.0.1:8080 REGISTRY_TOKEN=$TOKEN SERVICE=orders PEER_SERVICE=payments PORT=3001 \
 *     npx ts-node --transpile-only -r tsconfig-paths/register examples/pod/main.ts
 *
 * Routes: GET / (who am I, which peer would I call), GET /peer (calls a peer's GET / and returns its answer).
 */
import * as http from 'node:http';
import * as os from 'node:os';
import { ClosedError, registerInstance, resolver } from '@app/client';
import { loadPodConfig } from './pod-config';

const log = (msg: string, fields: Record<string, unknown> = {}): void => console.log(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }));

async function main(): Promise<void> {
  const config = loadPodConfig(process.env, os.hostname());
  const lookups = resolver({ gateways: config.gateways, token: config.token });
  const peers = lookups.watch(
    config.peerService,
    (r) => log('peers', { service: config.peerService, instances: r.instances.map((i) => `${i.id}@${i.address}:${i.port}`), stale: r.stale }),
    {},
    { onError: (err) => log('peer lookup failed', { error: err.message }) },
  );

  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const peer = peers.pick({ strategy: 'weighted', zone: config.zone });
    if (req.url === '/') return reply(200, { service: config.service, id: config.id, peer: peer && { id: peer.id, address: peer.address, port: peer.port }, peersStale: peers.stale });
    if (req.url === '/peer') {
      if (!peer) return reply(503, { error: 'no_peer', message: `no instance of ${config.peerService} known` });
      fetch(`http://${peer.address}:${peer.port}/`, { signal: AbortSignal.timeout(2000) })
        .then(async (answer) => reply(200, { via: config.id, peer: await answer.json() }))
        .catch((err: Error) => reply(502, { error: 'peer_failed', message: err.message }));
      return;
    }
    reply(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  log('serving', { port: config.port });

  // Registered only once it can serve. closeOnSignals: on SIGTERM/SIGINT the SDK deregisters, then
  // re-raises the signal, so the pod leaves lookups before it stops answering.
  const registration = await registerInstance({
    gateways: config.gateways,
    token: config.token,
    service: config.service,
    id: config.id,
    address: config.address,
    port: config.port,
    ttl: config.ttl,
    zone: config.zone,
    closeOnSignals: true,
  });
  log('registered', { service: config.service, id: config.id, gateway: registration.gateway });
  registration.on('failover', (e) => log('failover', e));
  registration.on('reregistered', (e) => log('reregistered', e));
  registration.on('heartbeat-failed', (e) => log('heartbeat failed', { error: e.error.message, retryInMs: Math.round(e.retryInMs) }));
  registration.on('deregistered', () => log('deregistered'));
  registration.on('error', (err) => log('registration error', { error: err.message }));
}

main().catch((err: Error) => {
  // A signal during start-up closed the registration: the SDK's hook ends the process.
  if (err instanceof ClosedError) return;
  log('failed to start', { error: err.message });
  process.exit(1);
});
