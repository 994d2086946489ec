/** Errors a caller of the SDK can act on. Messages name the gateway and status, never the token. */
export class RegistryClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface GatewayFailure {
  gateway: string;
  /** HTTP status when the gateway answered (5xx), otherwise the transport error's message. */
  status?: number;
  reason: string;
}

/** No configured gateway gave a usable answer (all refused, timed out, answered 5xx or are backing off). */
export class GatewaysUnavailableError extends RegistryClientError {
  constructor(
    readonly failures: GatewayFailure[],
    /** When the earliest gateway may be tried again (the SDK never retries sooner). */
    readonly retryInMs: number,
  ) {
    super(
      failures.length
        ? `no gateway answered: ${failures.map((f) => `${f.gateway} (${f.status ?? f.reason})`).join(', ')}`
        : `every gateway is backing off; next attempt in ${retryInMs} ms`,
    );
  }
}

/** The gateway refused the request for a reason retrying cannot fix (400, 401, 403, 413 ...). */
export class RequestRejectedError extends RegistryClientError {
  constructor(
    readonly gateway: string,
    readonly status: number,
    readonly code: string | undefined,
    detail: string | undefined,
    readonly field?: string,
  ) {
    super(`${gateway} answered ${status}${code ? ` ${code}` : ''}${detail ? `: ${detail}` : ''}`);
  }
}

/** The handle was closed while the operation waited. */
export class ClosedError extends RegistryClientError {
  constructor(what: string) {
    super(`${what} is closed`);
  }
}
