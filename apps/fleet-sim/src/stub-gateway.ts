/**
 * The load generator's own yardstick: a node:http server that answers the gateway's register (201),
 * heartbeat (204) and /metrics (empty) routes with nothing behind them. `fleet-sim scale` against it
 * shows what the generator alone can deliver on this machine, with no etcd or gateway in the way.
 *
 *   PORT=8099 node -r ts-node/register/transpile-only apps/fleet-sim/src/stub-gateway.ts
 */
import * as http from 'node:http';

const REGISTERED = JSON.stringify({ leaseId: '1', ttl: 60 });

export function startStubGateway(port: number, host = '127.0.0.1'): Promise<http.Server> {
  let heartbeats = 0;
  let registrations = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    // The body is not needed, but must be read for the socket to carry the next request.
    req.resume();
    req.on('end', () => {
      if (req.method === 'PUT' && url.endsWith('/heartbeat')) {
        heartbeats++;
        res.writeHead(204).end();
      } else if (req.method === 'PUT' && url.includes('/instances/')) {
        registrations++;
        res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(REGISTERED) }).end(REGISTERED);
      } else if (req.method === 'GET' && url === '/metrics') {
        const body = `stub_heartbeats_total ${heartbeats}\nstub_registrations_total ${registrations}\n`;
        res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
      } else {
        res.writeHead(404, { 'content-length': 0 }).end();
      }
    });
  });
  server.keepAliveTimeout = 72_000;
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

if (require.main === module) {
  const port = Number(process.env.PORT ?? 8099);
  void startStubGateway(port).then(() => process.stdout.write(`stub gateway on http://127.0.0.1:${port}\n`));
}
