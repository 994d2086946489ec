import { FastifyReply } from 'fastify';

/** Aborts when the connection closes before the answer is sent: a client that gave up frees its blocking-query slot at once. */
export function untilClientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.abort();
  });
  return gone.signal;
}
