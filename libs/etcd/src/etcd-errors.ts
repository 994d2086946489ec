import {
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCAbortedError,
  GRPCAlreadyExistsError,
  GRPCCancelledError,
  GRPCDataLossError,
  GRPCDeadlineExceededError,
  GRPCFailedPreconditionError,
  GRPCGenericError,
  GRPCInternalError,
  GRPCInvalidArgumentError,
  GRPCNotFoundError,
  GRPCNotImplementedError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  GRPCUnknownError,
} from 'etcd3';
import { OverloadedError, RegistryBackendError, RegistryError, RegistryUnavailableError, StorageFullError } from '@app/registry';

// etcd3's castGrpcError turns a grpc-js error into a class and drops the numeric `code`, but keeps
// grpc-js's message, which starts with "<code> <STATUS>: ". The message is read first; the class is
// the fallback for errors built without that prefix (ours, or etcd3's message-matched classes).
const STATUS_PREFIX = /^(\d{1,2}) ([A-Z_]+): /;

const STATUS_BY_CLASS: ReadonlyArray<readonly [abstract new (...args: never[]) => Error, string]> = [
  [GRPCUnavailableError, 'UNAVAILABLE'],
  [GRPCDeadlineExceededError, 'DEADLINE_EXCEEDED'],
  [GRPCResourceExhastedError, 'RESOURCE_EXHAUSTED'],
  [GRPCInvalidArgumentError, 'INVALID_ARGUMENT'],
  [GRPCCancelledError, 'CANCELLED'],
  [GRPCUnknownError, 'UNKNOWN'],
  [GRPCNotFoundError, 'NOT_FOUND'],
  [GRPCAlreadyExistsError, 'ALREADY_EXISTS'],
  [GRPCFailedPreconditionError, 'FAILED_PRECONDITION'],
  [GRPCAbortedError, 'ABORTED'],
  [GRPCOutOfRangeError, 'OUT_OF_RANGE'],
  [GRPCNotImplementedError, 'UNIMPLEMENTED'],
  [GRPCInternalError, 'INTERNAL'],
  [GRPCDataLossError, 'DATA_LOSS'],
  [GRPCUnauthenticatedError, 'UNAUTHENTICATED'],
  [EtcdPermissionDeniedError, 'PERMISSION_DENIED'],
  [EtcdInvalidAuthTokenError, 'UNAUTHENTICATED'],
  [EtcdAuthenticationFailedError, 'INVALID_ARGUMENT'],
  [EtcdLeaseInvalidError, 'NOT_FOUND'],
  [GRPCGenericError, 'UNKNOWN'],
  [EtcdError, 'UNKNOWN'],
];

/** The gRPC status name of an error that came from etcd or its channel; undefined for anything else. */
export function grpcStatusOf(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const fromMessage = STATUS_PREFIX.exec(err.message)?.[2];
  if (fromMessage) return fromMessage;
  return STATUS_BY_CLASS.find(([type]) => err instanceof type)?.[1];
}

/** Whether an error means "etcd is not reachable right now" (as opposed to a rejected request). */
export function isEtcdUnavailable(err: unknown): boolean {
  const status = grpcStatusOf(err);
  return status === 'UNAVAILABLE' || status === 'DEADLINE_EXCEEDED';
}

/**
 * The answer did not fit gRPC's receive limit (4 MB by default): etcd did the work, our client refused
 * the message. The same read in smaller pages succeeds.
 */
export function isResponseTooLarge(err: unknown): boolean {
  return grpcStatusOf(err) === 'RESOURCE_EXHAUSTED' && /larger than max/i.test((err as Error).message);
}

/** The size grpc-js reported for a refused message and its limit ("... larger than max (5000000 vs. 4194304)"). */
export function responseSizeOf(err: unknown): { size: number; max: number } | undefined {
  const match = /larger than max \((\d+) vs\.? (\d+)\)/i.exec((err as Error | undefined)?.message ?? '');
  return match ? { size: Number(match[1]), max: Number(match[2]) } : undefined;
}

/** A read pinned to a revision that etcd has compacted meanwhile (OUT_OF_RANGE). */
export function isRevisionCompacted(err: unknown): boolean {
  return grpcStatusOf(err) === 'OUT_OF_RANGE' && /compacted/i.test((err as Error).message);
}

/** etcd's database reached its space quota (alarm NOSPACE): writes are refused until an operator acts. */
export function isEtcdSpaceExhausted(err: unknown): boolean {
  return grpcStatusOf(err) === 'RESOURCE_EXHAUSTED' && /database space exceeded/i.test((err as Error).message);
}

/** How long a client is asked to wait before it retries a write refused under NOSPACE. */
const NOSPACE_RETRY_AFTER_SECONDS = 30;

/**
 * etcd's own load shedding: "too many requests" (RESOURCE_EXHAUSTED while its apply loop lags
 * commits). Transient, unlike the other RESOURCE_EXHAUSTED causes (oversized answer, full database).
 */
export function isEtcdOverloaded(err: unknown): boolean {
  return grpcStatusOf(err) === 'RESOURCE_EXHAUSTED' && /too many requests/i.test((err as Error).message);
}

const ACTION = Symbol('etcd action');

/**
 * Records on `err` what the gateway was doing ("reading service payments"), for the message clients
 * get, on a copy of the error of the same class, so callers' `instanceof` checks keep working. The
 * first (innermost) action wins.
 */
export function withEtcdAction<E>(err: E, action: string): E {
  if (!(err instanceof Error) || ACTION in err) return err;
  // A copy, not the error itself: one error object can reach many callers (AuthSession shares one
  // failed Authenticate between everyone waiting), and each must report its own action.
  const labelled = Object.create(Object.getPrototypeOf(err), Object.getOwnPropertyDescriptors(err)) as E & Error;
  Object.defineProperty(labelled, ACTION, { value: action, enumerable: false });
  return labelled;
}

/**
 * The typed error a failed etcd call means for a client, or undefined when `err` did not come from
 * etcd (a RegistryError or a bug passes through unchanged):
 * - UNAVAILABLE, DEADLINE_EXCEEDED: `RegistryUnavailableError` (503 + Retry-After; retrying helps);
 * - etcd's "too many requests": `OverloadedError` (503 + Retry-After);
 * - a full database (NOSPACE): `StorageFullError` (503 `registry_read_only` + a long Retry-After: the
 *   registry is read-only until an operator frees space; renewals and lookups go on);
 * - the gateway's credentials refused: `RegistryBackendError` saying so (an operator must act);
 * - any other status (an answer over gRPC's size limit, PERMISSION_DENIED, INVALID_ARGUMENT, ...): `RegistryBackendError` naming the status and what the gateway was doing. The
 *   same request fails until someone acts, so calling it "unavailable" would send operators looking
 *   in the wrong place; it is still a 503 with Retry-After (the client did nothing wrong and may retry later).
 * `action` is used when the error carries none (see withEtcdAction).
 */
export function etcdFailure(err: unknown, action: string): RegistryError | undefined {
  if (err instanceof RegistryError) return undefined;
  const status = grpcStatusOf(err);
  if (!status) return undefined;
  if (status === 'UNAVAILABLE' || status === 'DEADLINE_EXCEEDED') return new RegistryUnavailableError('etcd is unavailable; retry later');
  if (isEtcdOverloaded(err)) return new OverloadedError('etcd is overloaded (too many requests); retry later', 1);
  const doing = (err as { [ACTION]?: string })[ACTION] ?? action;
  if (isCredentialRejection(err)) {
    return new RegistryBackendError(
      `etcd refuses the gateway's credentials while ${doing} (${detailOf(err as Error)}): an operator must fix ETCD_USERNAME/ETCD_PASSWORD; lookups go on from memory`,
      status,
    );
  }
  if (isEtcdSpaceExhausted(err)) {
    return new StorageFullError(
      `etcd's database is full (NOSPACE alarm) while ${doing}: the registry accepts no new writes until an operator frees space; running instances stay registered and lookups go on (${detailOf(err as Error)})`,
      NOSPACE_RETRY_AFTER_SECONDS,
    );
  }
  return new RegistryBackendError(`etcd error while ${doing}: ${status} (${detailOf(err as Error)})`, status);
}

/**
 * Whether etcd refused the gateway's credentials (a wrong or changed password, a deleted user): the
 * one classifier for start-up (fatal), readiness and what clients are told. A new token does not help;
 * only an operator does.
 */
export function isCredentialRejection(err: unknown): boolean {
  if (err instanceof EtcdAuthenticationFailedError) return true;
  const text = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  return /authentication failed|invalid user ID or password|user name not found/i.test(text);
}

/** etcd's own words without grpc-js's status prefix, bounded: etcd messages never carry credentials. */
function detailOf(err: Error): string {
  const detail = err.message.replace(STATUS_PREFIX, '').trim() || err.name;
  return detail.length > 200 ? `${detail.slice(0, 200)}...` : detail;
}

/**
 * Whether etcd refused a call or a stream because of the token it carried (e.g. after an etcd restart
 * forgot every token): the one test unary calls, keepalive streams and the watch all use before they
 * drop that token (only that one: see AuthSession) and re-authenticate.
 */
export function isStaleTokenRejection(err: unknown): boolean {
  if (err instanceof EtcdInvalidAuthTokenError) return true;
  const text = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  return /invalid auth token|auth token is not provided/i.test(text);
}

/**
 * The same for a watch that etcd created and canceled at once: etcd 3.4 reports a stale token there as
 * "permission denied" (or an empty user name) as well. Not used for unary calls, where "permission
 * denied" is a real refusal that a new token would not change.
 */
export function isStaleTokenCancel(cancelReason: string): boolean {
  return isStaleTokenRejection(cancelReason) || /permission denied|user name is empty|user name not found/i.test(cancelReason);
}
