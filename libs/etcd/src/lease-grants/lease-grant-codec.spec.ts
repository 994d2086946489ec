import { loadSync, MethodDefinition } from '@grpc/proto-loader';
import { decodeLeaseGrantResponse, encodeLeaseGrantRequest } from './lease-grant-codec';

// The reference: the codec grpc-js uses for this call (proto-loader on etcd's rpc.proto, etcd3's options).
const definition = loadSync(require.resolve('etcd3/proto/rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const leaseGrant = (definition['etcdserverpb.Lease'] as Record<string, MethodDefinition<object, object>>).LeaseGrant;

const framed = (message: Uint8Array) => Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), Buffer.from(message)]);
const referenceResponse = (fields: object) => framed(leaseGrant.responseSerialize(fields));

describe('LeaseGrant codec', () => {
  it.each([0, 1, 5, 60, 127, 128, 300, 16_384, 86_400, 9_000_000_000])('frames a request with TTL %i that etcd reads back, with ID 0', (ttl) => {
    const body = encodeLeaseGrantRequest(ttl);
    expect(body.readUInt32BE(1)).toBe(body.length - 5);
    expect(leaseGrant.requestDeserialize(body.subarray(5))).toEqual({ TTL: String(ttl), ID: '0' });
    // Byte for byte what grpc-js sends, less its explicit "ID: 0" (proto3 leaves a zero field out).
    expect(body.subarray(5)).toEqual(leaseGrant.requestSerialize(ttl ? { TTL: ttl } : {}));
  });

  it('refuses a TTL that is not a non-negative integer (nothing is sent)', () => {
    for (const ttl of [-1, 1.5, Number.NaN, 2 ** 60]) expect(() => encodeLeaseGrantRequest(ttl)).toThrow(RangeError);
  });

  it.each(['1', '471648971764621841', '7587861294447001601', '9223372036854775807'])('reads lease id %s (int64, beyond 2^53) and TTL from an answer with a response header', (id) => {
    const leaseId = BigInt(id);
    const body = referenceResponse({
      header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: 1234567, raft_term: 2 },
      ID: leaseId.toString(),
      TTL: 60,
    });
    expect(decodeLeaseGrantResponse(body)).toEqual({ id: leaseId.toString(), ttlSeconds: 60, error: '' });
  });

  it('reads the error field, and ignores what follows the first message', () => {
    const body = Buffer.concat([referenceResponse({ ID: '7', TTL: 5, error: 'etcdserver: no leader' }), Buffer.from([0, 0, 0, 0, 2, 0x10, 0x09])]);
    expect(decodeLeaseGrantResponse(body)).toEqual({ id: '7', ttlSeconds: 5, error: 'etcdserver: no leader' });
  });

  it('refuses truncated, compressed and malformed answers with a clear error', () => {
    const good = referenceResponse({ ID: '300', TTL: 5 });
    expect(() => decodeLeaseGrantResponse(good.subarray(0, 3))).toThrow(/too short/);
    expect(() => decodeLeaseGrantResponse(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(() => decodeLeaseGrantResponse(Buffer.concat([Buffer.from([1]), good.subarray(1)]))).toThrow(/compressed/);
    expect(() => decodeLeaseGrantResponse(framed(Uint8Array.from([0x10, 0xff])))).toThrow(/truncated varint/);
    expect(() => decodeLeaseGrantResponse(framed(Uint8Array.from([0x0a, 0x05, 0x01])))).toThrow(/runs past/);
    expect(() => decodeLeaseGrantResponse(framed(Uint8Array.from([0x0b])))).toThrow(/wire type 3/);
  });
});
