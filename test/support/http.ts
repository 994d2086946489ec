/**
 * The one HTTP client of the test tree. node:http rather than fetch, because the tests need what
 * fetch normalises away: a path sent exactly as written (`../x`), duplicate or oddly cased headers,
 * a body without a content type, a hard timeout (a SIGSTOPped replica accepts connections and never
 * answers), and keep-alive sockets that can be destroyed on demand so jest exits on its own.
 *
 * Each test file gets its own module instance (jest's registry), so `defaultClient` is per file;
 * test/support/jest-setup.ts closes it after every file. Tests that need a different pool size or
 * timeout create their own HttpClient and close it in afterAll.
 */
import * as http from 'node:http';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests assert on arbitrary JSON shapes
type AnyJson = any;

export interface HttpRequest {
  method: string;
  /** Path and query, sent exactly as given: encode it yourself. */
  path: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Objects are sent as JSON; strings and buffers as they are (with a JSON content type). */
  body?: unknown;
  /**
   * An object is merged over the defaults (JSON content type and length for a body, the token).
   * A flat array `[name, value, name, value, ...]` is sent exactly as written, in order, duplicates
   * and casing kept, with no defaults added but Host (and the token, when given).
   */
  headers?: Record<string, string> | string[];
  /** Fails the request when the server is silent this long (default: the client's). */
  timeoutMs?: number;
  /** Aborts the request (e.g. a long poll the test no longer waits for). */
  signal?: AbortSignal;
  /** A new TCP connection closed after the answer, instead of a pooled one (shutdown tests). */
  freshConnection?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Header names and values as received, duplicates included. */
  rawHeaders: string[];
  text: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  json: AnyJson;
}

/** The text view of a response, for callers that parse (or ignore) the body themselves. */
export interface HttpAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export interface HttpClientOptions {
  maxSockets?: number;
  /** Default per-request silence timeout. */
  timeoutMs?: number;
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

export class HttpClient {
  private agent: http.Agent;
  private readonly timeoutMs: number;

  constructor(options: HttpClientOptions = {}) {
    // Callers bound their own concurrency (forEachLimited); the pool must not: a blocking-query test
    // holds 120+ long polls open and still has to read /metrics beside them.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 1_024 });
    // Below jest's 120 s test timeout, so a hung server fails with the request named, not a bare timeout.
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  send(baseUrl: string, req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(baseUrl);
    const payload =
      req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
    const auth: Record<string, string> = req.token !== undefined ? { authorization: `Bearer ${req.token}` } : {};
    let headers: Record<string, string> | string[];
    if (Array.isArray(req.headers)) {
      // node adds no Host to an array of headers, and HTTP/1.1 servers answer 400 without one.
      const names = req.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      headers = [...(names.includes('host') ? [] : ['host', url.host]), ...req.headers, ...Object.entries(auth).flat()];
    } else {
      headers = {
        ...(payload ? { 'content-type': 'application/json' } : {}),
        // A chunked body has no length up front: the server must count while it reads.
        ...(payload && !req.headers?.['transfer-encoding'] ? { 'content-length': String(payload.length) } : {}),
        ...auth,
        ...req.headers,
      };
    }
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const r = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: req.method,
          path: req.path,
          headers,
          agent: req.freshConnection ? false : this.agent,
          timeout: timeoutMs,
          signal: req.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            let parsed = false;
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              rawHeaders: res.rawHeaders,
              text,
              // Parsed on first read: fleets read thousands of bodies they never look into.
              get json() {
                if (!parsed) [json, parsed] = [parseJson(text), true];
                return json;
              },
            });
          });
        },
      );
      // The socket timeout fires on inactivity only, which is exactly what a frozen server shows.
      r.on('timeout', () => r.destroy(new Error(`${req.method} ${req.path} timed out after ${timeoutMs} ms`)));
      r.on('error', reject);
      r.end(payload);
    });
  }

  /** `method path` with an optional JSON body; the answer's body as text. */
  async request(baseUrl: string, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<HttpAnswer> {
    const res = await this.send(baseUrl, { method, path, body, timeoutMs });
    return { status: res.status, body: res.text, headers: res.headers };
  }

  /** GET and parse JSON; throws on a non-JSON body. */
  async getJson<T = unknown>(baseUrl: string, path: string, timeoutMs?: number): Promise<{ status: number; body: T }> {
    const res = await this.request(baseUrl, 'GET', path, undefined, timeoutMs);
    return { status: res.status, body: JSON.parse(res.body) as T };
  }

  /**
   * Destroys the keep-alive sockets. The client stays usable, without keep-alive: an afterAll that
   * runs after this one (e.g. a deregistration) must not leave a new idle socket behind.
   */
  close(): void {
    this.agent.destroy();
    this.agent = new http.Agent({ keepAlive: false });
  }
}

/** This test file's client; closed after the file by test/support/jest-setup.ts. */
export const defaultClient = new HttpClient();

export const rawRequest = (baseUrl: string, req: HttpRequest): Promise<HttpResponse> => defaultClient.send(baseUrl, req);

export const request = (baseUrl: string, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<HttpAnswer> =>
  defaultClient.request(baseUrl, method, path, body, timeoutMs);

/**
 * `call(url, method, body?)`: a full URL, JSON in, parsed JSON (or the text, when it is not JSON) out.
 * The name and signature are relied on by many tests.
 */
export async function call(url: string, method: string, body?: unknown): Promise<{ status: number; body: AnyJson; headers: Headers }> {
  const target = new URL(url);
  const res = await defaultClient.send(target.origin, { method, path: target.pathname + target.search, body });
  const headers = new Headers();
  for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
  return { status: res.status, body: res.text ? (parseJson(res.text) ?? res.text) : undefined, headers };
}

export function closeHttpClient(): void {
  defaultClient.close();
}

/** One sample of a Prometheus text page, summed over the label sets that include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue; // pages have thousands of lines; most are other families
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lineLabels = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => lineLabels[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
