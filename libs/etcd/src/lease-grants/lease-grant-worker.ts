/**
 * The lease-grant worker thread: LeaseGrant unary calls, off the HTTP thread (see WorkerLeaseGranter
 * for why, and why not on the lease engine's worker). Its channels mirror the HTTP thread's pool and
 * use its tokens (no Authenticate of their own). Imports are relative only: this file is loaded by path.
 */
import { MessagePort, parentPort, workerData } from 'node:worker_threads';
import { ReadyRotation } from '../connection-pool';
import { relayedConnection, RelayedPoolData, TokenAnswer, TokenRelay, TokenRequest } from '../worker-threads/relayed-connections';
import { encodeEtcdError } from '../worker-threads/wire-errors';
import { CompletedCalls, GrantAnswers, GrantItem, GrantResult } from './grant-batching';

export interface LeaseGrantWorkerData extends RelayedPoolData {
  kind: 'lease-grants';
}

/** HTTP thread -> worker. */
export type ToGrantWorker = { t: 'grant'; items: GrantItem[] } | TokenAnswer | { t: 'close' };

/** Worker -> HTTP thread. */
export type FromGrantWorker = { t: 'granted'; results: GrantResult[]; calls: CompletedCalls } | TokenRequest | { t: 'ready' } | { t: 'closed' };

export function runLeaseGrantWorker(port: MessagePort, data: LeaseGrantWorkerData): void {
  const post = (message: FromGrantWorker) => port.postMessage(message);
  const relay = new TokenRelay(port);
  const answers = new GrantAnswers((results, calls) => post({ t: 'granted', results, calls }));
  const observer = { requestCompleted: (method: string, result: 'ok' | 'error') => answers.counted(method, result) };
  const connections = data.endpointsPerConnection.map((_, i) => relayedConnection(data, relay, i, 0, observer));
  const rotation = new ReadyRotation(connections);

  port.on('message', (message: ToGrantWorker) => {
    if (relay.answer(message)) return;
    if (message.t === 'grant') {
      for (const [id, ttl] of message.items) {
        rotation
          .pick()
          .lease.leaseGrant({ TTL: ttl, ID: 0 })
          .then(
            (res) => answers.add(id, String(res.ID)),
            (err: unknown) => answers.add(id, encodeEtcdError(err)),
          );
      }
    } else if (message.t === 'close') {
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
