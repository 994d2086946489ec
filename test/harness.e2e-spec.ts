/**
 * The test tree's own HTTP client and poller (test/support/http.ts, wait.ts), against a plain node
 * server that echoes what it received: every other test trusts them to send exactly what it says
 * and to fail loudly instead of hanging.
 */
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { call, HttpClient, metricValue, rawRequest } from './support/http';
import { sleep, waitFor } from './support/wait';

interface Echo {
  method: string;
  url: string;
  rawHeaders: string[];
  body: string;
}

describe('test harness', () => {
  let server: http.Server;
  let base: string;
  /** Requests the server holds without answering (a frozen peer), released in afterAll. */
  const held: http.ServerResponse[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.url === '/silent') return void held.push(res);
        if (req.url === '/text') return void res.end('plain words');
        if (req.url === '/empty') return void res.writeHead(204).end();
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-twice', ['a', 'b']);
        res.end(JSON.stringify({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body } satisfies Echo));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const res of held) res.end();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('rawRequest sends the path as written, a JSON body with its type and length, and the token', async () => {
    const res = await rawRequest(base, { method: 'PUT', path: '/v1/services/a/../b?x=%2F', token: 't0k', body: { a: 1 } });
    const echo = res.json as Echo;
    expect(echo).toMatchObject({ method: 'PUT', url: '/v1/services/a/../b?x=%2F', body: '{"a":1}' });
    const headers = Object.fromEntries(echo.rawHeaders.flatMap((v, i, all) => (i % 2 ? [] : [[v.toLowerCase(), all[i + 1]]])));
    expect(headers).toMatchObject({ 'content-type': 'application/json', 'content-length': '7', authorization: 'Bearer t0k' });
    expect(res.rawHeaders.filter((h) => h === 'x-twice')).toHaveLength(2);
  });

  it('sends an array of headers exactly: order, casing and duplicates kept, nothing added but Host', async () => {
    const res = await rawRequest(base, { method: 'POST', path: '/', headers: ['X-Dup', '1', 'x-dup', '2', 'Content-Length', '2'], body: '{}' });
    const echo = res.json as Echo;
    expect(echo.rawHeaders).toEqual(['host', new URL(base).host, 'X-Dup', '1', 'x-dup', '2', 'Content-Length', '2', 'Connection', 'keep-alive']);
    expect(echo.body).toBe('{}');
  });

  it('call() parses JSON, passes other text through, and gives undefined for an empty body', async () => {
    const json = await call(`${base}/json?q=1`, 'DELETE');
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ method: 'DELETE', url: '/json?q=1' });
    expect(json.headers.get('content-type')).toBe('application/json');
    expect((await call(`${base}/text`, 'GET')).body).toBe('plain words');
    expect(await call(`${base}/empty`, 'GET')).toMatchObject({ status: 204, body: undefined });
  });

  it('fails a request the server never answers after its timeout, naming it', async () => {
    await expect(rawRequest(base, { method: 'GET', path: '/silent', timeoutMs: 300 })).rejects.toThrow('GET /silent timed out after 300 ms');
  });

  it('a closed client still works, without keeping a connection open', async () => {
    const client = new HttpClient();
    expect((await client.request(base, 'GET', '/text')).body).toBe('plain words');
    client.close();
    const again = await client.send(base, { method: 'GET', path: '/' });
    expect(again.headers.connection).toBe('close');
  });

  it('metricValue sums the samples whose labels match', () => {
    const page = ['# TYPE x_total counter', 'x_total{a="1",b="2"} 3', 'x_total{a="1",b="3"} 4', 'x_total_other 100', 'x_total{a="2"} 5'].join('\n');
    expect(metricValue(page, 'x_total')).toBe(12);
    expect(metricValue(page, 'x_total', { a: '1' })).toBe(7);
    expect(metricValue(page, 'x_total', { b: '3' })).toBe(4);
  });

  it('waitFor returns the first truthy value, takes a throw for "not yet", and names what it waited for', async () => {
    let calls = 0;
    const value = await waitFor(
      'the third call',
      () => {
        calls++;
        if (calls === 1) throw new Error('not up yet');
        return calls >= 3 && { calls };
      },
      5_000,
      10,
    );
    expect(value).toEqual({ calls: 3 });
    await expect(
      waitFor(
        'something that never happens',
        async () => {
          await sleep(1);
          throw new Error('still refused');
        },
        100,
        10,
      ),
    ).rejects.toThrow('timed out after 100 ms waiting for something that never happens (last error: still refused)');
  });
});
