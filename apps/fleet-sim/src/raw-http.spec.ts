import { completeLength, parseResponseHead } from './raw-http';

const buf = (s: string) => Buffer.from(s, 'latin1');

describe('parseResponseHead', () => {
  it('waits for the whole head', () => {
    expect(parseResponseHead(buf('HTTP/1.1 204 No Content\r\ndate: x\r\n'))).toBeUndefined();
  });

  it('reads a 204 without a body, whatever its headers say', () => {
    const b = buf('HTTP/1.1 204 No Content\r\nDate: x\r\nConnection: keep-alive\r\n\r\n');
    const head = parseResponseHead(b)!;
    expect(head).toStrictEqual({ status: 204, headLength: b.length, bodyLength: 0, close: false, retryAfterSeconds: undefined });
    expect(completeLength(b, head)).toBe(b.length);
  });

  it('frames a body by Content-Length, case-insensitively, and notices Connection: close', () => {
    const body = '{"error":"not_found"}';
    const text = `HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH: ${body.length}\r\nConnection: close\r\n\r\n`;
    const head = parseResponseHead(buf(text + body.slice(0, 5)))!;
    expect(head).toMatchObject({ status: 404, bodyLength: body.length, close: true });
    expect(completeLength(buf(text + body.slice(0, 5)), head)).toBeUndefined();
    expect(completeLength(buf(text + body), head)).toBe(text.length + body.length);
  });

  it('reads a chunked body up to its last chunk', () => {
    const text = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n';
    const head = parseResponseHead(buf(text))!;
    expect(head.bodyLength).toBe(-1);
    expect(completeLength(buf(text + '2\r\n{}\r\n'), head)).toBeUndefined();
    const full = text + '2\r\n{}\r\n0\r\n\r\n';
    expect(completeLength(buf(full), head)).toBe(full.length);
  });

  it('leaves a body without framing to the close of the socket', () => {
    const text = 'HTTP/1.1 200 OK\r\n\r\nabc';
    const head = parseResponseHead(buf(text))!;
    expect(head.bodyLength).toBe(-2);
    expect(completeLength(buf(text), head)).toBeUndefined();
  });

  it('refuses what is not HTTP/1.x', () => {
    expect(() => parseResponseHead(buf('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/not an HTTP/);
    expect(() => parseResponseHead(buf('HTTP/1.1 abc\r\n\r\n'))).toThrow(/bad status/);
  });

  it('reads Retry-After (seconds) on 503 and 429 only, case-insensitively', () => {
    const head = (status: string, headers: string) => parseResponseHead(buf(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\n${headers}\r\n`))!;
    expect(head('503 Service Unavailable', 'Retry-After: 2\r\n').retryAfterSeconds).toBe(2);
    expect(head('429 Too Many Requests', 'retry-after:0\r\n').retryAfterSeconds).toBe(0);
    expect(head('503 Service Unavailable', 'x-retry-after-hint: 9\r\nRETRY-AFTER:  7 \r\nretry-after: 8\r\n').retryAfterSeconds).toBe(7);
    // An HTTP date or garbage: none (the driver then backs off exponentially, as with node:http).
    expect(head('503 Service Unavailable', 'retry-after: Wed, 21 Oct 2026 07:28:00 GMT\r\n').retryAfterSeconds).toBeUndefined();
    expect(head('503 Service Unavailable', 'retry-after: -1\r\n').retryAfterSeconds).toBeUndefined();
    expect(head('503 Service Unavailable', '').retryAfterSeconds).toBeUndefined();
    // Not parsed on any other status: a heartbeat's answer costs what it did.
    expect(head('204 No Content', 'retry-after: 2\r\n').retryAfterSeconds).toBeUndefined();
    expect(head('201 Created', 'retry-after: 2\r\n').retryAfterSeconds).toBeUndefined();
  });
});
