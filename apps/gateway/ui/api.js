/* global fetch, localStorage */
// The gateway's REST API and /metrics, as the dashboard uses them. The token travels only in the
// Authorization header of same-origin requests: never in a URL, never to another host.

const TOKEN_KEY = 'registry-gateway.api-token';

/** The API token, kept in localStorage (or only in memory where storage is blocked). */
export class TokenStore {
  #memory = null;

  get() {
    try {
      return localStorage.getItem(TOKEN_KEY) ?? this.#memory;
    } catch {
      return this.#memory;
    }
  }

  set(token) {
    this.#memory = token;
    try {
      localStorage.setItem(TOKEN_KEY, token);
    } catch {
      /* storage blocked: the token lasts as long as the tab */
    }
  }

  forget() {
    this.#memory = null;
    try {
      localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* nothing stored */
    }
  }
}

/**
 * Runbooks link to `/ui#token=...`. The fragment never reaches a server, but it stays in the address
 * bar, the history and screenshots: read it once, then rewrite the address without it. Parsed by hand
 * because URLSearchParams turns `+` into a space, and base64 tokens (`openssl rand -base64 32`) have `+`.
 */
export function takeTokenFromFragment(location, history) {
  const parts = location.hash.replace(/^#/, '').split('&').filter((p) => p !== '');
  const tokenPart = parts.find((p) => p.startsWith('token='));
  if (tokenPart === undefined) return null;
  const rest = parts.filter((p) => p !== tokenPart).join('&');
  history.replaceState(history.state, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  const raw = tokenPart.slice('token='.length);
  let token;
  try {
    token = decodeURIComponent(raw);
  } catch {
    token = raw; // a stray `%` in a pasted token: take it as written
  }
  return token.trim() || null;
}

/** 401 or 403: the token is missing, unknown, or not allowed to read what the dashboard shows. */
export class ApiAuthError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * Any other answer than 2xx, 401 and 403 (`status`, the `field` a 400 names, Retry-After of a 429 or
 * 503 in ms), or no answer at all (`status` undefined).
 */
export class ApiError extends Error {
  constructor(message, { status, field, retryAfterMs } = {}) {
    super(message);
    this.status = status;
    this.field = field;
    this.retryAfterMs = retryAfterMs;
  }
}

function withBlocking(path, index, wait) {
  if (index === undefined || index === null) return path;
  const query = `index=${encodeURIComponent(index)}${wait ? `&wait=${encodeURIComponent(wait)}` : ''}`;
  return `${path}${path.includes('?') ? '&' : '?'}${query}`;
}

/** Retry-After in seconds (the only form the gateway sends); anything else is ignored. */
function retryAfterMsOf(header) {
  return header && /^\d+$/.test(header) ? Number(header) * 1_000 : undefined;
}

export class ApiClient {
  /** Server time minus browser time, from the Date header; ages are computed in server time. */
  clockOffsetMs = 0;

  constructor(tokens, fetchImpl = (...args) => fetch(...args)) {
    this.tokens = tokens;
    this.fetch = fetchImpl;
  }

  serverNow() {
    return Date.now() + this.clockOffsetMs;
  }

  /**
   * `GET /v1/services`: `{ body: {revision, stale, services}, index }`, `index` being the
   * X-Registry-Index header (null from a gateway without blocking queries). With `index` and `wait`
   * the gateway holds the request until the list changes; `signal` aborts it.
   */
  listServices({ index, wait, signal } = {}) {
    return this.#getJson(withBlocking('/v1/services', index, wait), signal);
  }

  /** `GET /v1/services/{service}?status=all`, blocking like listServices. */
  getService(service, { index, wait, signal } = {}) {
    return this.#getJson(withBlocking(`/v1/services/${encodeURIComponent(service)}?status=all`, index, wait), signal);
  }

  /** `GET /metrics` (public: no token sent). Returns the text and the time it was read. */
  async scrapeMetrics() {
    const response = await this.#send('/metrics', {});
    if (!response.ok) throw new ApiError(`/metrics answered ${response.status}`);
    return { text: await response.text(), atMs: Date.now() };
  }

  async #getJson(path, signal) {
    const token = this.tokens.get();
    if (!token) throw new ApiAuthError(401, 'An API token is needed to read the registry.');
    const response = await this.#send(path, { authorization: `Bearer ${token}`, accept: 'application/json' }, signal);
    const body = await response.json().catch(() => undefined);
    if (response.status === 401) throw new ApiAuthError(401, `The gateway did not accept this token (401: ${body?.message ?? 'unauthorized'}).`);
    if (response.status === 403) throw new ApiAuthError(403, `This token may not read the registry (403: ${body?.message ?? 'forbidden'}). Use a reader or admin token.`);
    if (!response.ok || body === undefined) {
      // The path without its query: the message is shown in the page, and `index=` would only be noise.
      throw new ApiError(`${path.split('?')[0]} answered ${response.status}${body?.error ? ` (${body.error})` : ''}`, {
        status: response.status,
        field: body?.field,
        retryAfterMs: retryAfterMsOf(response.headers.get('retry-after')),
      });
    }
    return { body, index: response.headers.get('x-registry-index') };
  }

  async #send(path, headers, signal) {
    let response;
    try {
      response = await this.fetch(path, { headers, signal, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    } catch {
      throw new ApiError('the gateway is not reachable');
    }
    this.#observeServerClock(response.headers.get('date'));
    return response;
  }

  #observeServerClock(dateHeader) {
    const serverMs = dateHeader ? Date.parse(dateHeader) : NaN;
    if (Number.isNaN(serverMs)) return;
    // The header has one-second resolution: only a larger difference is a skewed clock worth correcting.
    const offset = serverMs - Date.now();
    this.clockOffsetMs = Math.abs(offset) > 2_000 ? offset : 0;
  }
}
