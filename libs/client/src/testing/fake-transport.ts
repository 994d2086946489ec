/** Unit-test doubles: a scripted transport that records every request with the (fake) time it was sent. */
import { HttpRequest, HttpResponse, Transport } from '../transport';

export interface SentRequest extends HttpRequest {
  at: number;
  /** `METHOD path` without the gateway, e.g. `PUT /v1/services/a/instances/b/heartbeat`. */
  route: string;
  gateway: string;
}

export type Handler = (request: SentRequest) => HttpResponse | Promise<HttpResponse>;

export function response(status: number, body: unknown = '', headers: Record<string, string> = {}): HttpResponse {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { status, body: typeof body === 'string' ? body : JSON.stringify(body), header: (name) => lower[name.toLowerCase()] ?? null };
}

export function connectionRefused(): never {
  throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
}

export function fakeTransport(handler: Handler): Transport & { sent: SentRequest[] } {
  const sent: SentRequest[] = [];
  const transport = async (request: HttpRequest): Promise<HttpResponse> => {
    const url = new URL(request.url);
    const record: SentRequest = { ...request, at: Date.now(), route: `${request.method} ${url.pathname}${url.search}`, gateway: url.origin };
    sent.push(record);
    const answer = Promise.resolve(handler(record));
    if (!request.signal) return answer;
    // Like fetch: an abort ends a request that is still waiting for its answer.
    const signal = request.signal;
    let abort = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      abort = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
    });
    return Promise.race([answer, aborted]).finally(() => signal.removeEventListener('abort', abort));
  };
  return Object.assign(transport, { sent });
}
