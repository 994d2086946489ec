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

/** Any other answer than 2xx, 401 and 403, or no answer at all. */
export class ApiError extends Error {}

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

  /** `GET /v1/services`: `{ body: {revision, stale, services}, index }`. */
  listServices() {
    return this.#getJson('/v1/services');
  }

  /**
   * `GET /v1/services/{service}?status=all`. `index` is the X-Registry-Index header when the gateway
   * sends one: the seam for blocking queries (`?index=<index>&wait=30s`), which the poller can use
   * instead of a timer once gateways support them (see poller.js).
   */
  getService(service) {
    return this.#getJson(`/v1/services/${encodeURIComponent(service)}?status=all`);
  }

  /** `GET /metrics` (public: no token sent). Returns the text and the time it was read. */
  async scrapeMetrics() {
    const response = await this.#send('/metrics', {});
    if (!response.ok) throw new ApiError(`/metrics answered ${response.status}`);
    return { text: await response.text(), atMs: Date.now() };
  }

  async #getJson(path) {
    const token = this.tokens.get();
    if (!token) throw new ApiAuthError(401, 'An API token is needed to read the registry.');
    const response = await this.#send(path, { authorization: `Bearer ${token}`, accept: 'application/json' });
    const body = await response.json().catch(() => undefined);
    if (response.status === 401) throw new ApiAuthError(401, `The gateway did not accept this token (401: ${body?.message ?? 'unauthorized'}).`);
    if (response.status === 403) throw new ApiAuthError(403, `This token may not read the registry (403: ${body?.message ?? 'forbidden'}). Use a reader or admin token.`);
    if (!response.ok || body === undefined) throw new ApiError(`${path} answered ${response.status}${body?.error ? ` (${body.error})` : ''}`);
    return { body, index: response.headers.get('x-registry-index') };
  }

  async #send(path, headers) {
    let response;
    try {
      response = await this.fetch(path, { headers, cache: 'no-store', credentials: 'omit', redirect: 'error' });
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
