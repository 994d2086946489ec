/** Worker entry: runs a KeepAlivePump in its own thread (own event loop, own etcd connection). */
import { parentPort, workerData } from 'node:worker_threads';
import { KeepAlivePump, PumpConfig } from './keepalive-pump';

// Posted once every module above is loaded: the orchestrator measures worker start-up with it.
parentPort!.postMessage({ type: 'loaded' });

const { cfg, shared } = workerData as { cfg: PumpConfig | null; shared: SharedArrayBuffer };
if (cfg) {
  const pump = new KeepAlivePump(cfg, shared);
  parentPort!.on('message', (msg: { type: string }) => {
    if (msg.type !== 'stop') return;
    pump.stop();
    parentPort!.postMessage({ type: 'stopped' });
  });
  pump.start().catch((err: Error) => parentPort!.postMessage({ type: 'error', message: err.message }));
}
