// Plain-JS worker for the start-up comparison: loads what the TS pump loads (grpc-js, proto-loader,
// etcd3, etcd's rpc.proto), without ts-node, then says so.
const { parentPort } = require('node:worker_threads');
const grpc = require('@grpc/grpc-js');
const { loadSync } = require('@grpc/proto-loader');
require('etcd3');
grpc.loadPackageDefinition(
  loadSync(require.resolve('etcd3/proto/rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }),
);
parentPort.postMessage({ type: 'loaded' });
