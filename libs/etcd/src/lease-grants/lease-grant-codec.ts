/**
 * The two protobuf messages of etcd's Lease/LeaseGrant call, in gRPC's length-prefixed framing, by hand:
 * LeaseGrantRequest is one varint (TTL) and the answer needs one field (the lease id, an int64 that
 * does not fit a JS number), so a schema-driven codec would cost more than the message (see
 * LeaseGrantSession for why this call is made without grpc-js). Field numbers: etcd's rpc.proto.
 */

/** LeaseGrantRequest { int64 TTL = 1; int64 ID = 2 } with ID 0 (etcd picks one), framed for gRPC. */
export function encodeLeaseGrantRequest(ttlSeconds: number): Buffer {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) throw new RangeError(`lease TTL must be a non-negative integer, got ${ttlSeconds}`);
  const varint: number[] = [];
  let rest = ttlSeconds;
  while (rest > 0x7f) {
    varint.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  varint.push(rest);
  // 5-byte gRPC prefix: not compressed, big-endian length; then tag (field 1, varint) and the TTL.
  const message = ttlSeconds === 0 ? [] : [0x08, ...varint];
  return Buffer.from([0, 0, 0, 0, message.length, ...message]);
}

export interface LeaseGrantAnswer {
  /** The lease id as etcd3 reports it (decimal string; int64 does not fit a JS number). */
  id: string;
  ttlSeconds: number;
  /** LeaseGrantResponse.error: etcd's words when it refused the grant in the message itself. */
  error: string;
}

/** The first gRPC message of `body` (a LeaseGrantResponse); throws on a truncated or compressed frame. */
export function decodeLeaseGrantResponse(body: Buffer): LeaseGrantAnswer {
  if (body.length < 5) throw new Error(`LeaseGrant answer too short (${body.length} bytes)`);
  if (body[0] !== 0) throw new Error('LeaseGrant answer is compressed (not asked for)');
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) throw new Error(`LeaseGrant answer truncated (${body.length - 5} of ${length} bytes)`);
  const answer: LeaseGrantAnswer = { id: '0', ttlSeconds: 0, error: '' };
  const end = 5 + length;
  let pos = 5;
  while (pos < end) {
    const [tag, afterTag] = readVarint(body, pos, end);
    pos = afterTag;
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (wireType === 0) {
      const [value, next] = readVarint(body, pos, end);
      pos = next;
      if (field === 2) answer.id = BigInt.asIntN(64, value).toString();
      else if (field === 3) answer.ttlSeconds = Number(BigInt.asIntN(64, value));
    } else if (wireType === 2) {
      const [size, next] = readVarint(body, pos, end);
      pos = next + Number(size);
      if (pos > end) throw new Error('LeaseGrant answer: field runs past the message');
      if (field === 4) answer.error = body.toString('utf8', next, pos);
    } else if (wireType === 1) {
      pos += 8;
    } else if (wireType === 5) {
      pos += 4;
    } else {
      throw new Error(`LeaseGrant answer: unexpected wire type ${wireType}`);
    }
  }
  return answer;
}

function readVarint(buf: Buffer, start: number, end: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  for (let pos = start; pos < end && shift < 70n; pos++) {
    const byte = buf[pos];
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [value, pos + 1];
    shift += 7n;
  }
  throw new Error('LeaseGrant answer: truncated varint');
}
