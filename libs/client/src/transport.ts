import { RequestRejectedError } from './errors';

/**
 * The one seam between the SDK and the network: a function from request to response. The default
 * uses Node's global fetch; tests pass a scripted fake. A transport throws only when no HTTP answer
 * arrived (connection refused or reset, timeout, abort); every HTTP status is a response.
 */
export interface HttpRequest {
  method: 'GET' | 'PUT' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Aborts the request (close() of a watch that is holding a blocking query). */
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  /** Case-insensitive header lookup; null when absent. */
  header(name: string): string | null;
  body: string;
}

export type Transport = (request: HttpRequest) => Promise<HttpResponse>;

export const fetchTransport: Transport = async (request) => {
  // One controller per request, listeners removed afterwards: a watch reuses its signal for hours of
  // requests, and AbortSignal.any() would pile listeners onto it.
  const controller = new AbortController();
  const abort = (): void => controller.abort(request.signal?.reason);
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${request.timeoutMs} ms`)), request.timeoutMs);
  if (request.signal?.aborted) abort();
  request.signal?.addEventListener('abort', abort, { once: true });
  try {
    const res = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: controller.signal });
    const body = await res.text();
    return { status: res.status, header: (name) => res.headers.get(name), body };
  } catch (err) {
    // undici says only "fetch failed"; the reason (ECONNREFUSED, a timeout) is in its cause.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = controller.signal.aborted ? String((controller.signal.reason as Error)?.message ?? 'aborted') : (cause?.code ?? cause?.message);
    throw new Error(detail ? `${(err as Error).message} (${detail})` : (err as Error).message, { cause: err });
  } finally {
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', abort);
  }
};

/** Seconds of a `Retry-After` header (delta-seconds or an HTTP date) in ms; undefined when absent or unreadable. */
export function retryAfterMs(response: HttpResponse, now: number): number | undefined {
  const value = response.header('retry-after');
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The gateway's JSON error body `{error, message, field?}`, or undefined when the body is something else. */
export function errorBody(response: HttpResponse): { error?: string; message?: string; field?: string } | undefined {
  try {
    const parsed: unknown = JSON.parse(response.body);
    return parsed && typeof parsed === 'object' ? (parsed as { error?: string; message?: string; field?: string }) : undefined;
  } catch {
    return undefined;
  }
}

/** The typed error of an answer that retrying cannot fix. */
export function rejectionOf(gateway: string, response: HttpResponse): RequestRejectedError {
  const body = errorBody(response);
  return new RequestRejectedError(gateway, response.status, body?.error, body?.message, body?.field);
}
