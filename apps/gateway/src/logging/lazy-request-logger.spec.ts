import { Writable } from 'node:stream';
import pino from 'pino';
import { LazyRequestLogger } from './lazy-request-logger';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const parent = pino({ level: 'info', redact: { paths: ['token', '*.token'], censor: '[redacted]' } }, stream);
  return { parent, lines };
}

describe('LazyRequestLogger', () => {
  it('makes no child logger for a request that logs nothing', () => {
    const { parent } = capture();
    const child = jest.spyOn(parent, 'child');
    const log = new LazyRequestLogger(parent, { reqId: 'r-1' }, {});
    expect(log.level).toBe('info');
    expect(child).not.toHaveBeenCalled();
  });

  it('writes the line the eager child would have written: bindings, options, redaction', async () => {
    const { parent, lines } = capture();
    const log = new LazyRequestLogger(parent, { reqId: 'r-2' }, { level: 'debug' });
    log.debug({ context: 'HTTP', status: 404 }, 'not found');
    log.error({ context: 'HTTP', auth: { token: 'secret-value' } }, 'refused');
    log.trace('below the child level');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ reqId: 'r-2', context: 'HTTP', status: 404, msg: 'not found', level: 20 });
    expect(lines[1]).toMatchObject({ reqId: 'r-2', auth: { token: '[redacted]' }, msg: 'refused' });
    expect(JSON.stringify(lines)).not.toContain('secret-value');
    expect(log.child({ extra: 1 }).level).toBe('debug');
  });
});
