/**
 * The one HTTP client of the fault harness: node http with its own keep-alive agent (so pods cost a
 * few sockets, not one per request) and a hard timeout on every request, because a frozen (SIGSTOPped)
 * replica accepts connections and never answers. `close()` destroys the agent's sockets, so jest can
 * exit on its own.
 */
import * as http from 'node:http';

export interface HttpAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export class HttpClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

  request(baseUrl: string, method: string, path: string, body?: unknown, timeoutMs = 2000): Promise<HttpAnswer> {
    const url = new URL(path, baseUrl);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method,
          timeout: timeoutMs,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
          res.on('error', reject);
        },
      );
      // The socket timeout only fires on inactivity; a frozen server is exactly that.
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** GET and parse JSON; throws on a non-JSON body. */
  async getJson<T = unknown>(baseUrl: string, path: string, timeoutMs = 2000): Promise<{ status: number; body: T }> {
    const res = await this.request(baseUrl, 'GET', path, undefined, timeoutMs);
    return { status: res.status, body: JSON.parse(res.body) as T };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One sample of a Prometheus text page, summed over the label sets that include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lineLabels = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => lineLabels[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
