/**
 * Plain node:http with one keep-alive agent per gateway: thousands of simulated pods share a few
 * hundred sockets, so the simulator's own connection handling is not what gets measured. Calls beyond
 * `maxSockets` wait in the agent's queue; their timeout only starts once they have a socket, so a
 * 40,000-pod start measures the gateway's queue, not the simulator's.
 */
import * as http from 'node:http';

export interface HttpResult {
  status: number;
  body: string;
  /** Seconds from a `Retry-After` header (503 overloaded, 429 rate limited), when there was one. */
  retryAfterSeconds?: number;
}

export class KeepAliveHttpClient {
  private readonly agent: http.Agent;
  private readonly target: URL;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
    maxSockets = 256,
  ) {
    this.target = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
  }

  get baseUrl(): string {
    return this.target.origin;
  }

  /** Rejects on network errors and after `timeoutMs` (message "timeout"); never on an HTTP status. */
  request(method: string, path: string, body?: unknown, readBody = false): Promise<HttpResult> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.target.hostname,
          port: this.target.port,
          path,
          method,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          let text = '';
          if (readBody) res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (readBody) text += chunk;
          });
          const retryAfter = Number(res.headers['retry-after']);
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, retryAfterSeconds: Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined }));
          res.on('error', reject);
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Short outcome label for a failed call: "timeout", "ECONNREFUSED", ... */
export function errorLabel(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.message === 'timeout') return 'timeout';
  return e?.code ?? e?.message?.slice(0, 40) ?? 'error';
}
