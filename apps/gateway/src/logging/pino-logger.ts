import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';

/**
 * Field names that hold a secret wherever they appear in a logged object (pino matches `*` one level
 * deep, so each is listed at the depths our log objects have).
 */
const SECRET_FIELDS = ['password', 'token', 'authorization', 'credentials', 'ETCD_PASSWORD', 'REDIS_URL'];

/**
 * Structured JSON logs (one object a line, `reqId` on lines about a request). Redaction is a second
 * line of defence: no code path logs credentials or tokens on purpose (error messages of etcd, Redis
 * and the auth guard name the variable or the token's *name*, never a value), and these paths catch
 * the ones that would slip through in objects. Request logging is off (bootstrap.ts), so request
 * headers are never logged; their paths are listed in case someone turns it on.
 */
export function createPinoLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'registry-gateway' },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["proxy-authorization"]',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'headers.authorization',
        ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
      ],
      censor: '[redacted]',
    },
  });
}

/**
 * Nest's own log lines (bootstrap, lifecycle, our Logger instances) go to the same pino logger, as
 * `{context, msg}`. Nest passes the context as the last parameter (and a stack before it for errors).
 */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]) {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]) {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]) {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]) {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]) {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]) {
    this.write('fatal', message, params);
  }

  private write(level: pino.Level, message: unknown, params: unknown[]): void {
    if (!this.logger.isLevelEnabled(level)) return;
    const context = params.length && typeof params[params.length - 1] === 'string' ? (params.pop() as string) : undefined;
    const trace = level === 'error' || level === 'fatal' ? params.find((p): p is string => typeof p === 'string') : undefined;
    const fields: Record<string, unknown> = { context };
    if (trace) fields.trace = trace;
    if (message instanceof Error) {
      fields.trace ??= message.stack;
      this.logger[level](fields, message.message);
    } else if (typeof message === 'object' && message !== null) {
      // Logged as a field, so the redaction paths apply to it.
      this.logger[level]({ ...fields, data: message }, '');
    } else {
      this.logger[level](fields, String(message));
    }
  }
}
