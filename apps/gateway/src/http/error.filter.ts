import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { InstanceNotFoundError, InvalidRequestError, OverloadedError, RegistryError, RegistryUnavailableError } from '@app/registry';

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
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { status, body, retryAfter } = this.describe(exception);
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
    this.logger.error(`unhandled error: ${(exception as Error)?.stack ?? String(exception)}`);
    return { status: 500, body: { error: 'internal', message: 'internal error' } };
  }
}

function httpErrorCode(status: number): string {
  const names: Record<number, string> = {
    400: 'invalid_request',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'not_found',
    405: 'method_not_allowed',
    413: 'payload_too_large',
    415: 'unsupported_media_type',
    429: 'rate_limited',
  };
  return names[status] ?? 'error';
}
