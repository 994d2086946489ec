/**
 * The yardstick for the gateway's HTTP overhead: plain Fastify answering the same routes with the
 * same statuses and bodies, doing nothing else. Run as its own process, like the gateway.
 *
 *   PORT, HOST                 where to listen
 *   BARE_RESOLVE_BODY_FILE     JSON the resolve route answers (the gateway's own answer, captured
 *                              by the bench); re-serialized per request, as the gateway does
 */
import * as fs from 'node:fs';
import Fastify from 'fastify';

async function main(): Promise<void> {
  const app = Fastify({ logger: false });
  const bodyFile = process.env.BARE_RESOLVE_BODY_FILE;
  const resolveBody: unknown = bodyFile ? JSON.parse(fs.readFileSync(bodyFile, 'utf8')) : { service: '', revision: '0', stale: false, instances: [] };

  app.put('/v1/services/:service/instances/:id/heartbeat', async (_req, reply) => {
    await reply.code(204).send();
  });
  app.get('/v1/services/:service', async () => resolveBody);
  // POST /v1/heartbeats: one outcome per ref, in order (every ref known, as after the bench's pre-registration).
  app.post<{ Body: { instances: Array<{ service: string; id: string }> } }>('/v1/heartbeats', { bodyLimit: 320 * 1024 }, async (req) => ({
    results: req.body.instances.map(({ service, id }) => ({ service, id, result: 'accepted' })),
  }));
  app.get('/health', async () => ({ status: 'ok' }));

  await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? '127.0.0.1' });
  const close = () => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
}

main().catch((err: Error) => {
  process.stderr.write(`bare-server: ${err.message}\n`);
  process.exit(1);
});
