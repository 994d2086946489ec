import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { RawHttpPool, RawRequest } from './raw-http';

/** A real local server (no etcd, no gateway): the pool's socket handling, not the parser, is under test. */
describe('RawHttpPool', () => {
  let server: http.Server;
  let url: string;
  const seen: string[] = [];
  /** What the server parsed of each request to /echo: its header lines as sent, and its body. */
  const echoed: Array<{ rawHeaders: string[]; body: string }> = [];
  let connections = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/echo') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          echoed.push({ rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') });
          res.writeHead(201, { 'content-type': 'application/json' }).end('{"leaseId":"1"}');
        });
        return;
      }
      // Retry-After means something only on 429/503: the pool reads it there and nowhere else.
      if (req.url === '/shed') return void res.writeHead(503, { 'retry-after': '3', 'content-type': 'application/json' }).end('{"error":"overloaded"}');
      if (req.url === '/limited') return void res.writeHead(429, { 'Retry-After': '0' }).end();
      if (req.url === '/shed-date') return void res.writeHead(503, { 'retry-after': 'Wed, 21 Oct 2026 07:28:00 GMT' }).end();
      if (req.url === '/ok-retry-after') return void res.writeHead(204, { 'retry-after': '5' }).end();
      if (req.url === '/hang') return; // never answers
      if (req.url === '/close') return void res.writeHead(204, { connection: 'close' }).end();
      if (req.url === '/missing') return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"a":');
        return void setTimeout(() => res.end('1}'), 5);
      }
      res.writeHead(204).end();
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const send = (pool: RawHttpPool, path: string) =>
    new Promise<{ err?: string; status: number }>((resolve) => pool.send(pool.requestBytes('PUT', path), (err, status) => resolve({ err, status })));
  const sendBytes = (pool: RawHttpPool, bytes: RawRequest) =>
    new Promise<{ err?: string; status: number; retryAfterSeconds?: number }>((resolve) =>
      pool.send(bytes, (err, status, retryAfterSeconds) => resolve({ err, status, retryAfterSeconds })),
    );

  it('answers every request over a few reused sockets, queueing the rest', async () => {
    const pool = new RawHttpPool(url, { sockets: 3, timeoutMs: 5000 });
    const before = connections;
    seen.length = 0;
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => send(pool, `/v1/x/${i}/heartbeat`)));
    expect(answers.every((a) => a.err === undefined && a.status === 204)).toBe(true);
    expect(pool.written).toBe(30);
    expect(connections - before).toBe(3);
    // Each request reached the server exactly once (the order across sockets is the server's).
    expect([...seen].sort()).toEqual(Array.from({ length: 30 }, (_, i) => `PUT /v1/x/${i}/heartbeat`).sort());
    pool.close();
  });

  it('reads bodies framed by Content-Length or chunks, and keeps the socket', async () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 5000 });
    expect(await send(pool, '/missing')).toEqual({ err: undefined, status: 404 });
    expect(await send(pool, '/chunked')).toEqual({ err: undefined, status: 200 });
    expect(await send(pool, '/ok')).toEqual({ err: undefined, status: 204 });
    pool.close();
  });

  it('opens a new socket after the server closes one', async () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 5000 });
    const before = connections;
    expect(await send(pool, '/close')).toEqual({ err: undefined, status: 204 });
    expect(await send(pool, '/ok')).toEqual({ err: undefined, status: 204 });
    expect(connections - before).toBe(2);
    pool.close();
  });

  it('fails a request that gets no answer with "timeout" and frees its socket for the next one', async () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 200 });
    const hung = send(pool, '/hang');
    const next = send(pool, '/ok');
    expect(await hung).toEqual({ err: 'timeout', status: 0 });
    expect(await next).toEqual({ err: undefined, status: 204 });
    pool.close();
  });

  it('fails what is still waiting when closed', async () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 5000 });
    void send(pool, '/hang');
    const waiting = send(pool, '/ok');
    pool.close();
    expect(await waiting).toEqual({ err: 'closed', status: 0 });
  });

  it('keeps the heartbeat request as it was: request line, host, content-length 0, nothing else', () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 5000 });
    expect(pool.requestBytes('PUT', '/v1/services/a/instances/b/heartbeat')).toBe(
      `PUT /v1/services/a/instances/b/heartbeat HTTP/1.1\r\nhost: ${new URL(url).host}\r\ncontent-length: 0\r\n\r\n`,
    );
    pool.close();
  });

  it('frames an ASCII JSON body as one latin1 string, and the socket carries the next request', async () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 5000 });
    const before = connections;
    echoed.length = 0;
    const json = JSON.stringify({ address: '10.0.0.1', port: 8080, tags: ['sim'] });
    const bytes = pool.jsonRequestBytes('PUT', '/echo', json);
    expect(typeof bytes).toBe('string');
    expect(await sendBytes(pool, bytes)).toEqual({ err: undefined, status: 201, retryAfterSeconds: undefined });
    expect(await send(pool, '/ok')).toEqual({ err: undefined, status: 204 });
    expect(echoed).toEqual([
      { rawHeaders: ['host', new URL(url).host, 'content-type', 'application/json', 'content-length', String(json.length)], body: json },
    ]);
    expect(connections - before).toBe(1);
    pool.close();
  });

  it('encodes a body with non-ASCII characters as utf8, Content-Length in bytes', async () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 5000 });
    echoed.length = 0;
    const json = JSON.stringify({ metadata: { owner: 'Zoë', note: '✓ ok 🚀' } });
    const bytes = pool.jsonRequestBytes('PUT', '/echo', json);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(await sendBytes(pool, bytes)).toMatchObject({ err: undefined, status: 201 });
    expect(await send(pool, '/ok')).toEqual({ err: undefined, status: 204 });
    expect(echoed).toHaveLength(1);
    expect(echoed[0].rawHeaders).toContain(String(Buffer.byteLength(json)));
    expect(Buffer.byteLength(json)).toBeGreaterThan(json.length);
    expect(JSON.parse(echoed[0].body)).toEqual({ metadata: { owner: 'Zoë', note: '✓ ok 🚀' } });
    pool.close();
  });

  it('reports Retry-After of a 503 or 429 (seconds only), never of other answers', async () => {
    const pool = new RawHttpPool(url, { sockets: 1, timeoutMs: 5000 });
    expect(await sendBytes(pool, pool.requestBytes('PUT', '/shed'))).toEqual({ err: undefined, status: 503, retryAfterSeconds: 3 });
    expect(await sendBytes(pool, pool.requestBytes('PUT', '/limited'))).toEqual({ err: undefined, status: 429, retryAfterSeconds: 0 });
    expect(await sendBytes(pool, pool.requestBytes('PUT', '/shed-date'))).toEqual({ err: undefined, status: 503, retryAfterSeconds: undefined });
    expect(await sendBytes(pool, pool.requestBytes('PUT', '/ok-retry-after'))).toEqual({ err: undefined, status: 204, retryAfterSeconds: undefined });
    pool.close();
  });
});
