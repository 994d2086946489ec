import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { InstanceNotFoundError, InvalidRequestError, OverloadedError, RateLimitedError, RegistryError, RegistryUnavailableError, StorageFullError, UpdateConflictError } from '@app/registry';
import { RegistryBackendError } from '@app/registry';

export interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

/** The one place that maps failures to HTTP statuses and JSON error bodies. */
@Catch()
export class RegistryErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const { status, body, retryAfter } = this.describe(exception);
    this.log(http.getRequest<FastifyRequest | undefined>(), exception, status, body);
    if (retryAfter) void reply.header('retry-after', String(retryAfter));
    void reply.status(status).send(body);
  }

  private describe(exception: unknown): { status: number; body: ErrorBody; retryAfter?: number } {
    if (exception instanceof RegistryError) {
      const body: ErrorBody = { error: exception.code, message: exception.message };
      if (exception instanceof InvalidRequestError) return { status: 400, body: { ...body, field: exception.field } };
      if (exception instanceof InstanceNotFoundError) return { status: 404, body };
      if (exception instanceof OverloadedError) return { status: 503, body, retryAfter: exception.retryAfterSeconds };
      if (exception instanceof RegistryUnavailableError) return { status: 503, body, retryAfter: 1 };
      if (exception instanceof StorageFullError) return { status: 503, body, retryAfter: exception.retryAfterSeconds };
      if (exception instanceof RateLimitedError) return { status: 429, body, retryAfter: exception.retryAfterSeconds };
      if (exception instanceof UpdateConflictError) return { status: 409, body };
      if (exception instanceof RegistryBackendError) return { status: 502, body };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      return { status, body: { error: httpErrorCode(status), message: exception.message } };
    }
    // Fastify's own errors (body too large, malformed JSON, wrong content type) carry a statusCode.
    const statusCode = (exception as { statusCode?: number }).statusCode;
    if (statusCode && statusCode >= 400 && statusCode < 500) {
      return { status: statusCode, body: { error: httpErrorCode(statusCode), message: (exception as Error).message } };
    }
    return { status: 500, body: { error: 'internal', message: 'internal error' } };
  }

  /**
   * Through the request's own logger, so the line carries `reqId` (the `x-request-id` the client
   * sent, or the one Fastify generated). Expected outcomes (4xx, 503 while etcd is away) go to debug:
   * they are counted in registry_http_request_duration_seconds, and an outage must not turn into a
   * log storm. Only the message and stack of an unexpected error are logged, never its other fields.
   */
  private log(request: FastifyRequest | undefined, exception: unknown, status: number, body: ErrorBody): void {
    if (status >= 500 && !(exception instanceof RegistryError)) {
      const err = exception as Error | undefined;
      const message = `unhandled error: ${err?.message ?? String(exception)}`;
      if (request?.log) request.log.error({ context: 'HTTP', status, stack: err?.stack }, message);
      else this.logger.error(message, err?.stack);
    } else {
      request?.log?.debug({ context: 'HTTP', status, error: body.error }, body.message);
    }
  }
}

/** Fastify's routerOptions.maxParamLength: room above the 128 of a name, so those get a 400 naming the field. */
export const MAX_PATH_SEGMENT_LENGTH = 1024;

/**
 * Fastify's `frameworkErrors`: the router's own refusals (a bad percent-escape, a path segment over
 * routerOptions.maxParamLength), which no Nest filter sees, in the same JSON shape as every other
 * error. Their default bodies also echoed the whole path.
 */
export function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : error.code === 'FST_ERR_BAD_URL' ? 400 : (error.statusCode ?? 500);
  const message =
    status === 414 ? `a path segment is longer than ${MAX_PATH_SEGMENT_LENGTH} characters` : status === 400 ? 'the path is not a valid URL (malformed percent-encoding)' : 'request refused';
  void reply.status(status).send({ error: httpErrorCode(status), message } satisfies ErrorBody);
}

function httpErrorCode(status: number): string {
  const names: Record<number, string> = {
    400: 'invalid_request',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'not_found',
    405: 'method_not_allowed',
    413: 'payload_too_large',
    414: 'uri_too_long',
    415: 'unsupported_media_type',
    429: 'rate_limited',
  };
  return names[status] ?? 'error';
}
