/**
 * One typed error per failure a caller can act on. The HTTP layer maps them to statuses in one
 * exception filter; nothing below it builds an HTTP response.
 */
export abstract class RegistryError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidRequestError extends RegistryError {
  readonly code = 'invalid_request';
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class InstanceNotFoundError extends RegistryError {
  readonly code = 'instance_not_found';
  constructor(service: string, id: string) {
    super(`instance ${service}/${id} is not registered`);
  }
}

/** etcd did not answer in time or refused the connection; the caller may retry later. */
export class RegistryUnavailableError extends RegistryError {
  readonly code = 'registry_unavailable';
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}

/** The gateway is shedding load (bounded write queue full); retry after `retryAfterSeconds`. */
export class OverloadedError extends RegistryError {
  readonly code = 'overloaded';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A client spent its request budget (e.g. registrations per API token); retry after `retryAfterSeconds`. */
export class RateLimitedError extends RegistryError {
  readonly code = 'rate_limited';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The instance kept changing under a compare-and-swap update (e.g. re-registered meanwhile); retry. */
export class UpdateConflictError extends RegistryError {
  readonly code = 'update_conflict';
  constructor(service: string, id: string) {
    super(`instance ${service}/${id} changed concurrently; retry the update`);
  }
}

/** An operator has to act: clients come back in this many seconds, not in a tight loop. */
export const BACKEND_RETRY_AFTER_SECONDS = 10;

/**
 * etcd answered, but failed the request for a reason other than being unreachable: the gateway's
 * credentials refused, an answer over gRPC's message limit, PERMISSION_DENIED, INVALID_ARGUMENT, ...
 * Retrying the same request does not help until an operator acts, so this is not
 * `registry_unavailable`; but the client did nothing wrong either, so it is a 503 with Retry-After
 * (BACKEND_RETRY_AFTER_SECONDS), never a 502 a client cannot act on. `grpcStatus` is the status name
 * (e.g. `RESOURCE_EXHAUSTED`); the message names the cause and what the gateway was doing.
 */
export class RegistryBackendError extends RegistryError {
  readonly code = 'etcd_error';
  readonly retryAfterSeconds = BACKEND_RETRY_AFTER_SECONDS;
  constructor(
    message: string,
    readonly grpcStatus: string,
  ) {
    super(message);
  }
}

/**
 * etcd's database reached its space quota (alarm NOSPACE): etcd refuses every write that would grow it
 * until an operator frees space (compact, defragment, disarm the alarm). Renewals and reads still
 * work, so running instances stay registered and lookups go on; only new writes wait. A 503 with a
 * long Retry-After: the registry is temporarily read-only, not broken, and a retry loop every second
 * would only add load.
 */
export class StorageFullError extends RegistryError {
  readonly code = 'registry_read_only';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
