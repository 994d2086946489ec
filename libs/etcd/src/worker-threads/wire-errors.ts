import { status as GrpcStatus } from '@grpc/grpc-js';
import { castGrpcError } from 'etcd3';
import { grpcStatusOf } from '../etcd-errors';

/**
 * An etcd error as it crosses a thread: structured cloning keeps an Error's message but not its class,
 * and the registrar and the HTTP error mapping decide by class and gRPC status (isEtcdUnavailable,
 * etcdFailure). So the status travels by name and the same etcd3 class is made again on arrival.
 */
export interface WireError {
  message: string;
  /** gRPC status name (UNAVAILABLE, NOT_FOUND, ...); absent = not an etcd error. */
  status?: string;
}

export function encodeEtcdError(err: unknown): WireError {
  const message = err instanceof Error ? err.message : String(err);
  const status = grpcStatusOf(err);
  return status ? { message, status } : { message };
}

/** The error of the same etcd3 class (castGrpcError: by message first, then by gRPC code). */
export function decodeEtcdError(wire: WireError): Error {
  const err = new Error(wire.message);
  const code = wire.status === undefined ? undefined : (GrpcStatus as unknown as Record<string, number>)[wire.status];
  if (code === undefined) return err;
  return castGrpcError(Object.assign(err, { code }));
}
