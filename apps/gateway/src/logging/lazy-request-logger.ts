import type { FastifyBaseLogger, LogLevel } from 'fastify';
import type { FastifyChildLoggerFactory } from 'fastify/types/logger';
import type { Bindings, ChildLoggerOptions } from 'pino';

type LogArgs = [obj: unknown, msg?: string, ...args: unknown[]];

/**
 * Fastify gives every request a pino child logger bound to its request id. With redaction configured
 * (pino-logger.ts), pino runs each child's bindings through the redactor when the child is made: 8 %
 * of all bytes the HTTP thread allocated while registering (heap profile of the register-rate bench),
 * for loggers that almost never write (request logging is off; only errors are logged). This one makes
 * the real child on first use, with the same bindings and options, so a line it writes is the same.
 */
export class LazyRequestLogger implements FastifyBaseLogger {
  private real: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get level(): LogLevel {
    return (this.real?.level ?? this.options.level ?? this.parent.level) as LogLevel;
  }

  set level(level: LogLevel) {
    this.logger().level = level;
  }

  fatal(...args: LogArgs): void {
    (this.logger().fatal as (...a: LogArgs) => void)(...args);
  }
  error(...args: LogArgs): void {
    (this.logger().error as (...a: LogArgs) => void)(...args);
  }
  warn(...args: LogArgs): void {
    (this.logger().warn as (...a: LogArgs) => void)(...args);
  }
  info(...args: LogArgs): void {
    (this.logger().info as (...a: LogArgs) => void)(...args);
  }
  debug(...args: LogArgs): void {
    (this.logger().debug as (...a: LogArgs) => void)(...args);
  }
  trace(...args: LogArgs): void {
    (this.logger().trace as (...a: LogArgs) => void)(...args);
  }
  silent(...args: LogArgs): void {
    (this.logger().silent as (...a: LogArgs) => void)(...args);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger().child(bindings, options);
  }

  private logger(): FastifyBaseLogger {
    return (this.real ??= this.parent.child(this.bindings, this.options));
  }
}

export const lazyRequestLoggerFactory: FastifyChildLoggerFactory = (logger, bindings, options) => new LazyRequestLogger(logger, bindings, options);
