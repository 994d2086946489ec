/**
 * LeaseKeepAlive without grpc-js: one HTTP/2 stream on node:http2, renewals written as ready-framed
 * gRPC messages (many per http2 write), answers parsed by hand. The experiment's stand-in for the
 * production form of "batch renewals per http2 write" (grpc-js's public API cannot do that).
 * Minimal on purpose: no reconnect, no deadline; a non-OK gRPC status fails loudly.
 */
import * as http2 from 'node:http2';

export interface KeepAliveAnswer {
  ttlSeconds: number;
}

export class RawLeaseKeepAlive {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    readonly h2: http2.ClientHttp2Stream,
    private readonly onAnswer: (answer: KeepAliveAnswer) => void,
  ) {
    h2.on('data', (chunk: Buffer) => this.consume(chunk));
    h2.on('response', (headers) => {
      if (headers[':status'] !== 200) h2.destroy(new Error(`LeaseKeepAlive answered HTTP ${headers[':status']}`));
    });
    h2.on('trailers', (trailers) => {
      const status = trailers['grpc-status'];
      if (status !== undefined && status !== '0') h2.destroy(new Error(`LeaseKeepAlive grpc-status ${status}: ${trailers['grpc-message']}`));
    });
  }

  /** Opens the stream on `session`; `token` is etcd's auth token, sent as gRPC metadata. */
  static open(session: http2.ClientHttp2Session, token: string | undefined, onAnswer: (answer: KeepAliveAnswer) => void): RawLeaseKeepAlive {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': '/etcdserverpb.Lease/LeaseKeepAlive',
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    if (token) headers.token = token;
    return new RawLeaseKeepAlive(session.request(headers), onAnswer);
  }

  /** All `leaseIds` in one http2 write: one nghttp2 flush carries them all. */
  renew(leaseIds: string[]): void {
    this.h2.write(Buffer.concat(leaseIds.map((id) => grpcFrame(encodeLeaseKeepAliveRequest(id)))));
  }

  close(): void {
    this.h2.close();
  }

  private consume(chunk: Buffer): void {
    let buf: Buffer = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (buf.length >= 5) {
      const length = buf.readUInt32BE(1);
      if (buf.length < 5 + length) break;
      this.onAnswer({ ttlSeconds: decodeTtl(buf.subarray(5, 5 + length)) });
      buf = buf.subarray(5 + length);
    }
    this.pending = buf;
  }
}

/** LeaseKeepAliveRequest { int64 ID = 1; }: tag 0x08, then the ID as a varint. */
export function encodeLeaseKeepAliveRequest(id: string): Buffer {
  const bytes = [0x08];
  let v = BigInt.asUintN(64, BigInt(id));
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}

/** gRPC length-prefixed message: 1 byte compressed flag (0), 4 bytes big-endian length, payload. */
export function grpcFrame(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}

/** TTL (field 3, int64) of a LeaseKeepAliveResponse { ResponseHeader header = 1; int64 ID = 2; int64 TTL = 3; }. */
export function decodeTtl(msg: Buffer): number {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (;;) {
      const byte = msg[pos++];
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
  };
  let ttl = 0;
  while (pos < msg.length) {
    const key = varint();
    const wireType = key & 7;
    if (wireType === 0) {
      const value = varint();
      if (key >>> 3 === 3) ttl = value;
    } else if (wireType === 2) {
      // Not `pos += varint()`: that would add the length to pos as it was before the varint.
      const length = varint();
      pos += length;
    } else {
      throw new Error(`unexpected protobuf wire type ${wireType} in LeaseKeepAliveResponse`);
    }
  }
  return ttl;
}
