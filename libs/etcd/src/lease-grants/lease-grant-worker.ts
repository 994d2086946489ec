/**
 * The lease-grant worker thread: LeaseGrant unary calls, off the HTTP thread (see WorkerLeaseGranter
 * for why, and why not on the lease engine's worker). Its channels mirror the HTTP thread's pool and
 * use its tokens (no Authenticate of their own): per pooled connection a hand-framed grant session
 * (LeaseGrantSession, which makes the grants) and a grpc-js connection (while the session is not
 * connected). Imports are relative only: this file is loaded by path.
 */
import { MessagePort, parentPort, workerData } from 'node:worker_threads';
import { ReadyRotation } from '../connection-pool';
import { relayedConnection, RelayedPoolData, TokenAnswer, TokenRelay, TokenRequest, workerTls } from '../worker-threads/relayed-connections';
import { encodeEtcdError } from '../worker-threads/wire-errors';
import { CompletedCalls, GrantAnswers, GrantItem, GrantResult } from './grant-batching';
import { LeaseGrantSession } from './lease-grant-session';

export interface LeaseGrantWorkerData extends RelayedPoolData {
  kind: 'lease-grants';
}

/** HTTP thread -> worker. */
export type ToGrantWorker = { t: 'grant'; items: GrantItem[] } | TokenAnswer | { t: 'close' };

/** Worker -> HTTP thread. */
export type FromGrantWorker =
  | { t: 'granted'; results: GrantResult[]; calls: CompletedCalls; bySession: number }
  | TokenRequest
  | { t: 'ready' }
  | { t: 'closed' };

export function runLeaseGrantWorker(port: MessagePort, data: LeaseGrantWorkerData): void {
  const post = (message: FromGrantWorker) => port.postMessage(message);
  const relay = new TokenRelay(port);
  const answers = new GrantAnswers((results, calls, bySession) => post({ t: 'granted', results, calls, bySession }));
  const observer = { requestCompleted: (method: string, result: 'ok' | 'error') => answers.counted(method, result) };
  // One token per pooled connection, shared by its grpc-js channel and its grant session.
  const tokens = data.endpointsPerConnection.map((_, i) => relay.source(i));
  const connections = data.endpointsPerConnection.map((_, i) => relayedConnection(data, relay, i, 0, observer, tokens[i]));
  const rotation = new ReadyRotation(connections);
  const sessions = data.endpointsPerConnection.map(
    (endpoints, i) => new LeaseGrantSession({ endpoints, tls: workerTls(data.tls), requestTimeoutMs: data.requestTimeoutMs, tokens: tokens[i], observer }),
  );
  let nextSession = 0;
  // Grants take a connected grant session (half grpc-js's CPU per call: LeaseGrantSession); while
  // none is connected (start-up, a member failing over), the grpc-js connections make them.
  const grant = (id: number, ttl: number): void => {
    for (let tried = 0; tried < sessions.length; tried++) {
      const session = sessions[nextSession++ % sessions.length];
      if (!session.isReady()) continue;
      session.grant(ttl).then(
        (leaseId) => answers.add(id, leaseId, true),
        (err: unknown) => answers.add(id, encodeEtcdError(err), true),
      );
      return;
    }
    rotation
      .pick()
      .lease.leaseGrant({ TTL: ttl, ID: 0 })
      .then(
        (res) => answers.add(id, String(res.ID)),
        (err: unknown) => answers.add(id, encodeEtcdError(err)),
      );
  };

  port.on('message', (message: ToGrantWorker) => {
    if (relay.answer(message)) return;
    if (message.t === 'grant') {
      for (const [id, ttl] of message.items) grant(id, ttl);
    } else if (message.t === 'close') {
      for (const session of sessions) session.close();
      for (const connection of connections) connection.close();
      post({ t: 'closed' });
      port.close();
    }
  });
  post({ t: 'ready' });
}

if (parentPort && (workerData as LeaseGrantWorkerData | undefined)?.kind === 'lease-grants') {
  runLeaseGrantWorker(parentPort, workerData as LeaseGrantWorkerData);
}
