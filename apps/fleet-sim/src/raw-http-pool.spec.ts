import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { RawHttpPool } from './raw-http';

/** A real local server (no etcd, no gateway): the pool's socket handling, not the parser, is under test. */
describe('RawHttpPool', () => {
  let server: http.Server;
  let url: string;
  const seen: string[] = [];
  let connections = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
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
});
