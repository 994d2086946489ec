import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { InstanceNotFoundError, InvalidRequestError, OverloadedError, RateLimitedError, RegistryError, RegistryUnavailableError, StorageFullError, UpdateConflictError } from '@app/registry';
import { RegistryBackendError } from '@app/registry';
import { TokenRequiredError } from '../auth/request-auth';

export interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

/** A failure as HTTP: status, JSON body and the headers that go with it. */
export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

/**
 * The one place that maps failures to HTTP statuses, JSON error bodies and headers (Retry-After,
 * WWW-Authenticate). Used by the Nest filter below and by the hot routes served outside Nest
 * (http/fast-routes), so both answer a failure identically.
 */
export function describeError(exception: unknown): ErrorResponse {
  if (exception instanceof RegistryError) {
    const body: ErrorBody = { error: exception.code, message: exception.message };
    if (exception instanceof InvalidRequestError) return { status: 400, body: { ...body, field: exception.field }, headers: {} };
    if (exception instanceof InstanceNotFoundError) return { status: 404, body, headers: {} };
    if (exception instanceof OverloadedError) return { status: 503, body, headers: retryAfter(exception.retryAfterSeconds) };
    if (exception instanceof RegistryUnavailableError) return { status: 503, body, headers: retryAfter(exception.retryAfterSeconds) };
    if (exception instanceof StorageFullError) return { status: 503, body, headers: retryAfter(exception.retryAfterSeconds) };
    if (exception instanceof RateLimitedError) return { status: 429, body, headers: retryAfter(exception.retryAfterSeconds) };
    if (exception instanceof UpdateConflictError) return { status: 409, body, headers: {} };
    if (exception instanceof RegistryBackendError) return { status: 503, body, headers: retryAfter(exception.retryAfterSeconds) };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const headers: Record<string, string> = exception instanceof TokenRequiredError ? { 'www-authenticate': exception.challenge } : {};
    return { status, body: { error: httpErrorCode(status), message: exception.message }, headers };
  }
  // Fastify's own errors (body too large, malformed JSON, wrong content type) carry a statusCode.
  const statusCode = (exception as { statusCode?: number }).statusCode;
  if (statusCode && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, body: { error: httpErrorCode(statusCode), message: (exception as Error).message }, headers: {} };
  }
  return { status: 500, body: { error: 'internal', message: 'internal error' }, headers: {} };
}

function retryAfter(seconds: number | undefined): Record<string, string> {
  return seconds ? { 'retry-after': String(seconds) } : {};
}

const httpLogger = new Logger('HTTP');

/** Logs (see logError) and answers a failure as describeError maps it. */
export function sendError(request: FastifyRequest | undefined, reply: FastifyReply, exception: unknown): FastifyReply {
  const { status, body, headers } = describeError(exception);
  logError(request, exception, status, body);
  for (const [name, value] of Object.entries(headers)) void reply.header(name, value);
  return reply.status(status).send(body);
}

/**
 * Through the request's own logger, so the line carries `reqId` (the `x-request-id` the client
 * sent, or the one Fastify generated). Expected outcomes (4xx, 503 while etcd is away) go to debug:
 * they are counted in registry_http_request_duration_seconds, and an outage must not turn into a
 * log storm. Only the message and stack of an unexpected error are logged, never its other fields.
 */
export function logError(request: FastifyRequest | undefined, exception: unknown, status: number, body: ErrorBody): void {
  if (status >= 500 && !(exception instanceof RegistryError)) {
    const err = exception as Error | undefined;
    const message = `unhandled error: ${err?.message ?? String(exception)}`;
    if (request?.log) request.log.error({ context: 'HTTP', status, stack: err?.stack }, message);
    else httpLogger.error(message, err?.stack);
  } else {
    request?.log?.debug({ context: 'HTTP', status, error: body.error }, body.message);
  }
}

/** Every failure of a Nest route (and of Fastify's parsers, through Nest's error handler). */
@Catch()
export class RegistryErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    void sendError(http.getRequest<FastifyRequest | undefined>(), http.getResponse<FastifyReply>(), exception);
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
