// cluster-key-slot ships no types: Redis Cluster's CRC16 slot of a key (its hash tag, if any), 0-16383.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
