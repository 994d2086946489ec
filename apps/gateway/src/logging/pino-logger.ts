import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';

/**
 * Structured JSON logs. Redaction is a second line of defence: no code path logs credentials or
 * tokens on purpose, and these paths catch the ones that would slip through in objects.
 */
export function createPinoLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'registry-gateway' },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.ETCD_PASSWORD', 'password', 'token'],
      censor: '[redacted]',
    },
  });
}

/** Nest's own log lines (bootstrap, lifecycle, our Logger instances) go to the same pino logger. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}
