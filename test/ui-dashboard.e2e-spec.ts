/**
 * Issue 14 (dashboard): /ui in real headless Chromium (Debian's `chromium`, driven by playwright-core)
 * against a real gateway with authentication on, on the shared etcd and Redis. Registrations and
 * removals go through the REST API; the page must show them on its own (blocking queries on the
 * services list and the selected service; a 3 s timer on a gateway without them). The screenshot
 * in the README is written by this test when UPDATE_SCREENSHOT=1 (docs/dashboard.png); otherwise to
 * .local/, so a test run leaves the work tree clean.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { GatewayUnderTest } from './support/gateway';
import { instancePath, startSecuredGateway, TestTokens, writeTokenFile } from './support/security';
import { rawRequest } from './support/http';
import { sleep, waitFor } from './support/wait';

jest.setTimeout(180_000);

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOT === '1' ? path.resolve(__dirname, '..', 'docs', 'dashboard.png') : path.resolve(__dirname, '..', '.local', 'dashboard.png');
/** The page refreshes every 3 s; a loaded 2-core machine may need many refreshes. */
const EVENTUALLY_MS = 45_000;

let tokens: TestTokens;
/** A reader token as `openssl rand -base64` makes them: `+`, `/` and `=` must survive `#token=`. */
const RUNBOOK_TOKEN = 'rb+Qx/9kZq2LmN4pT7wVc3=';
let gw: GatewayUnderTest;
let browser: Browser;

/** Instances kept alive (and counted in heartbeats/s) by the heartbeat loop: "service/id". */
const alive = new Set<string>();
let heartbeatsStopped = false;
let heartbeatLoop: Promise<void> = Promise.resolve();

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing: ${CHROMIUM} does not exist. Install it with "apt-get install -y chromium" (Debian), then run this test again.`);
  }
  tokens = writeTokenFile([{ name: 'runbook', token: RUNBOOK_TOKEN, role: 'reader' }]);
  gw = await startSecuredGateway(tokens);
  // launch() gives every run a fresh, temporary user-data-dir, removed on close.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  heartbeatLoop = (async () => {
    while (!heartbeatsStopped) {
      await Promise.all([...alive].map((key) => rawRequest(gw.url, { method: 'PUT', path: `${instancePath(...split(key))}/heartbeat`, token: tokens.admin }).catch(() => undefined)));
      await sleep(500);
    }
  })();
});

afterAll(async () => {
  heartbeatsStopped = true;
  await heartbeatLoop;
  await browser?.close();
  await gw?.close();
  tokens?.remove();
});

const split = (key: string) => key.split('/') as [string, string];

/** TTL 10 s: leases renew every ~3.3 s, so renewals/s has something to show within the test. */
async function register(service: string, id: string, body: Record<string, unknown>): Promise<void> {
  const res = await rawRequest(gw.url, { method: 'PUT', path: instancePath(service, id), token: tokens.admin, body: { address: '10.0.3.17', port: 8080, ttl: 10, ...body } });
  expect(res.status).toBe(201);
  alive.add(`${service}/${id}`);
}

async function deregister(service: string, id: string): Promise<void> {
  alive.delete(`${service}/${id}`);
  expect((await rawRequest(gw.url, { method: 'DELETE', path: instancePath(service, id), token: tokens.admin })).status).toBe(204);
}

/** Retries `check` (jest assertions) until it passes or EVENTUALLY_MS is over, then throws with its last failure. */
const eventually = (check: () => Promise<void>): Promise<unknown> => waitFor('the dashboard to show it', async () => (await check(), true), EVENTUALLY_MS, 250);

const text = (page: Page, selector: string) => page.locator(selector).innerText();
const serviceCell = (service: string, col: string) => `#service-rows tr[data-service="${service}"] [data-col="${col}"]`;
const instanceIds = (page: Page) => page.locator('#instance-rows tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-instance')));
const figure = (page: Page, key: string) => text(page, `[data-figure="${key}"] .value`);

/** One registry request of the page, with the test's clock when it was sent and when it ended. */
interface Sent {
  path: string;
  search: URLSearchParams;
  sentAt: number;
  endedAt?: number;
}

/** Records the page's registry reads (`/v1/services...`), to tell held requests from plain ones. */
function recordRegistryReads(page: Page): Sent[] {
  const log: Sent[] = [];
  const byRequest = new Map<object, Sent>();
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!url.pathname.startsWith('/v1/services')) return;
    const sent: Sent = { path: url.pathname, search: url.searchParams, sentAt: Date.now() };
    byRequest.set(request, sent);
    log.push(sent);
  });
  const ended = (request: object) => {
    const sent = byRequest.get(request);
    if (sent) sent.endedAt = Date.now();
  };
  page.on('requestfinished', ended);
  page.on('requestfailed', ended);
  return log;
}

const held = (s: Sent) => s.search.has('index') && s.search.get('wait') === '30s';

describe('dashboard files at /ui', () => {
  it('serves the page at /ui and /ui/ and its modules without a token, with a restrictive CSP', async () => {
    for (const p of ['/ui', '/ui/']) {
      const page = await rawRequest(gw.url, { method: 'GET', path: p });
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.text).toContain('<script type="module" src="/ui/app.js">');
      expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    }
    const script = await rawRequest(gw.url, { method: 'GET', path: '/ui/app.js' });
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await rawRequest(gw.url, { method: 'GET', path: '/ui/style.css' })).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('answers a JSON 404 for any other name, including paths that try to leave the directory', async () => {
    for (const p of ['/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/%2E%2E/%2E%2E/package.json', '/ui/sub/app.js']) {
      const res = await rawRequest(gw.url, { method: 'GET', path: p });
      expect({ path: p, status: res.status, error: res.json?.error }).toEqual({ path: p, status: 404, error: 'not_found' });
    }
  });
});

describe('dashboard in Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const requestedUrls: string[] = [];
  const apiAuthorization: string[] = [];
  let reads: Sent[] = [];

  beforeAll(async () => {
    await register('payments', 'pay-7f9c', { address: '10.0.3.17', zone: 'eu-west-1a', tags: ['canary'], metadata: { version: '1.4.2' } });
    await register('payments', 'pay-2b41', { address: '10.0.3.18', zone: 'eu-west-1b', metadata: { version: '1.4.1' }, status: 'DRAINING', weight: 50 });
    await register('checkout', 'co-1', { address: '10.0.4.2', port: 9000, zone: 'eu-west-1a' });
    await register('search', 'se-1', { address: '10.0.5.1', zone: 'eu-west-1a' });
    await register('search', 'se-2', { address: '10.0.5.2', zone: 'eu-west-1b', status: 'DOWN' });
    context = await browser.newContext({ viewport: { width: 1400, height: 600 } });
    page = await context.newPage();
    reads = recordRegistryReads(page);
    page.on('request', (request) => {
      requestedUrls.push(request.url());
      if (new URL(request.url()).pathname.startsWith('/v1/')) apiAuthorization.push(request.headers()['authorization'] ?? '');
    });
    await page.goto(`${gw.url}/ui#token=${RUNBOOK_TOKEN}`);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('shows the services registered by the test with counts and statuses, after taking the token from #token=', async () => {
    await eventually(async () => {
      expect(await text(page, serviceCell('payments', 'instances'))).toBe('2');
      expect(await text(page, serviceCell('payments', 'status'))).toMatch(/1 UP\s*1 DRAINING/);
      expect(await text(page, serviceCell('search', 'status'))).toMatch(/1 UP\s*1 DOWN/);
      expect(await text(page, serviceCell('checkout', 'instances'))).toBe('1');
    });
    // Read once, then gone from the address bar; kept in localStorage for the next visit.
    expect(page.url()).toBe(`${gw.url}/ui`);
    expect(await page.evaluate("localStorage.getItem('registry-gateway.api-token')")).toBe(RUNBOOK_TOKEN);
    expect(await page.locator('#token-panel').isHidden()).toBe(true);
  });

  it("shows a service's instances: address, zone, tags, status, weight and registered age", async () => {
    await page.click('#service-rows button[data-select="payments"]');
    await eventually(async () => expect(await instanceIds(page)).toEqual(['pay-2b41', 'pay-7f9c']));
    const cells = await page.locator('#instance-rows tr[data-instance="pay-7f9c"] td').allInnerTexts();
    expect(cells.slice(0, 6)).toEqual(['pay-7f9c', '10.0.3.17:8080', 'eu-west-1a', 'canary', 'UP', '100']);
    expect(cells[6]).toMatch(/^\d+ (s|min)$/);
    expect(cells[7]).toBe('version=1.4.2');
    const draining = await page.locator('#instance-rows tr[data-instance="pay-2b41"] td').allInnerTexts();
    expect([draining[4], draining[5]]).toEqual(['DRAINING', '50']);
  });

  /**
   * A change must arrive through a request that was already waiting when it happened (sent before,
   * answered after, carrying `index=`), and no plain read of the list or of the selected service may
   * be sent meanwhile: the 3 s timer would show up as such reads.
   */
  async function changeArrivesThroughHeldQueries(change: () => Promise<void>, shown: () => Promise<void>): Promise<void> {
    const waiting = (path: string) => reads.some((r) => r.path === path && held(r) && r.endedAt === undefined);
    await eventually(async () => expect([waiting('/v1/services'), waiting('/v1/services/payments')]).toEqual([true, true]));
    const changedAt = Date.now();
    await change();
    await eventually(shown);
    const shownAt = Date.now();
    for (const path of ['/v1/services', '/v1/services/payments']) {
      const delivered = reads.filter((r) => r.path === path && held(r) && r.sentAt < changedAt && r.endedAt !== undefined && r.endedAt >= changedAt);
      expect({ path, delivered: delivered.length }).toEqual({ path, delivered: 1 });
      const plain = reads.filter((r) => r.path === path && !r.search.has('index') && r.sentAt >= changedAt && r.sentAt <= shownAt);
      expect({ path, plain: plain.length }).toEqual({ path, plain: 0 });
    }
    // One held request per resource: never more than two waiting at once in this tab.
    expect(reads.filter((r) => held(r) && r.endedAt === undefined).length).toBeLessThanOrEqual(2);
  }

  it('shows an instance added and one removed through the API, without a reload, through held queries', async () => {
    await changeArrivesThroughHeldQueries(
      () => register('payments', 'pay-c3d2', { address: '10.0.3.19', zone: 'eu-west-1c', tags: ['canary', 'arm64'], metadata: { version: '1.4.2' } }),
      async () => {
        expect(await instanceIds(page)).toEqual(['pay-2b41', 'pay-7f9c', 'pay-c3d2']);
        expect(await text(page, serviceCell('payments', 'instances'))).toBe('3');
      },
    );
    await changeArrivesThroughHeldQueries(
      () => deregister('payments', 'pay-2b41'),
      async () => {
        expect(await instanceIds(page)).toEqual(['pay-7f9c', 'pay-c3d2']);
        expect(await text(page, serviceCell('payments', 'instances'))).toBe('2');
        expect(await text(page, serviceCell('payments', 'status'))).toBe('2 UP');
      },
    );
    expect(await text(page, '#status')).toMatch(/, live/);
    // Once blocking, every read of the list and of the selected service was held (payments was read
    // plainly in batches before it was selected, and once plainly when selected, to get an index).
    for (const path of ['/v1/services', '/v1/services/payments']) {
      const ofPath = reads.filter((r) => r.path === path);
      const firstHeld = ofPath.findIndex(held);
      expect(firstHeld).toBeGreaterThan(0);
      expect({ path, plainOnceBlocking: ofPath.slice(firstHeld).filter((r) => !held(r)).length }).toEqual({ path, plainOnceBlocking: 0 });
    }
    expect(reads.filter((r) => r.path === '/v1/services')[0].search.has('index')).toBe(false);
  });

  it("shows the gateway's live figures from /metrics as numbers, with sparklines", async () => {
    await eventually(async () => {
      expect(Number(await figure(page, 'heartbeats'))).toBeGreaterThan(0);
      expect(Number(await figure(page, 'renewals'))).toBeGreaterThanOrEqual(0);
      expect(await figure(page, 'instances')).toBe(String(await gw.metric('registry_instances')));
      expect(await figure(page, 'keepalive-streams')).toBe(String(await gw.metric('registry_keepalive_streams')));
      expect(await figure(page, 'etcd-auth')).toBe(String(await gw.metric('registry_etcd_auth_requests_total')));
      expect(await figure(page, 'watch')).toBe('up');
      // At least two points: a line, not a dot.
      expect(await page.locator('[data-figure="heartbeats"] polyline').getAttribute('points')).toMatch(/^\S+ \S+/);
    });
    expect(await gw.metric('registry_instances')).toBe(5);
    // This gateway exports the self-preservation gauge (gateways without it hide the card): off, as no
    // renewed instance went silent.
    expect(await gw.metric('registry_self_preservation')).toBe(0);
    expect(await figure(page, 'self-preservation')).toBe('off');
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
  });

  it('keeps the token panel open across refreshes when the operator opened it, until closed', async () => {
    await page.click('#change-token');
    expect(await page.locator('#token-panel').isVisible()).toBe(true);
    const before = await text(page, '#status');
    // A change wakes the held list query, whose answer updates the page (and its status line).
    await register('inventory', 'inv-1', { address: '10.0.6.1' });
    await eventually(async () => expect(await text(page, '#status')).not.toBe(before));
    expect(await page.locator('#token-panel').isVisible()).toBe(true);
    await page.click('#close-token');
    expect(await page.locator('#token-panel').isHidden()).toBe(true);
  });

  it('sends the token only in the Authorization header, never in a URL', async () => {
    expect(apiAuthorization.length).toBeGreaterThan(0);
    expect(new Set(apiAuthorization)).toEqual(new Set([`Bearer ${RUNBOOK_TOKEN}`]));
    // The first URL is the page itself, with its fragment (which the browser never sends).
    const sent = requestedUrls.map((u) => new URL(u)).map((u) => `${u.origin}${u.pathname}${u.search}`);
    expect(sent.filter((u) => u.includes(RUNBOOK_TOKEN) || decodeURIComponent(u).includes(RUNBOOK_TOKEN))).toEqual([]);
    expect(requestedUrls.every((u) => u.startsWith(gw.url))).toBe(true);
  });

  it('aborts its held requests while the tab is hidden, sends nothing, and catches up when shown', async () => {
    const setHidden = (hidden: boolean) =>
      page.evaluate(`Object.defineProperty(document, 'hidden', { value: ${hidden}, configurable: true });
        Object.defineProperty(document, 'visibilityState', { value: '${hidden ? 'hidden' : 'visible'}', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'))`);
    await eventually(async () => expect(reads.filter((r) => held(r) && r.endedAt === undefined).length).toBe(2));
    await setHidden(true);
    await eventually(async () => expect(reads.filter((r) => r.endedAt === undefined)).toEqual([]));
    const hiddenSince = reads.length;
    await register('payments', 'pay-e5f6', { address: '10.0.3.20' });
    await sleep(4_000);
    expect(reads.slice(hiddenSince)).toEqual([]);
    await setHidden(false);
    await eventually(async () => {
      expect(await instanceIds(page)).toEqual(['pay-7f9c', 'pay-c3d2', 'pay-e5f6']);
      expect(await text(page, serviceCell('payments', 'instances'))).toBe('3');
    });
    await deregister('payments', 'pay-e5f6');
  });
});

describe('dashboard against a gateway without blocking queries', () => {
  let context: BrowserContext;
  let page: Page;
  let reads: Sent[];

  beforeAll(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    // What an older gateway answers to `index`/`wait` (its query validation knows neither).
    await page.route(
      (url) => url.pathname.startsWith('/v1/services') && url.searchParams.has('index'),
      (route) => route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ statusCode: 400, error: 'bad_request', field: 'index', message: 'unknown query parameter' }) }),
    );
    reads = recordRegistryReads(page);
    await page.goto(`${gw.url}/ui#token=${RUNBOOK_TOKEN}`);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('tries a blocking query once, then shows changes by reading every 3 s', async () => {
    await eventually(async () => expect(await page.locator('#service-rows button[data-select="checkout"]').count()).toBe(1));
    await page.click('#service-rows button[data-select="checkout"]');
    await eventually(async () => expect(await instanceIds(page)).toEqual(['co-1']));
    await register('checkout', 'co-2', { address: '10.0.4.3', port: 9000 });
    await eventually(async () => {
      expect(await instanceIds(page)).toEqual(['co-1', 'co-2']);
      expect(await text(page, serviceCell('checkout', 'instances'))).toBe('2');
    });
    await deregister('checkout', 'co-2');
    await eventually(async () => expect(await instanceIds(page)).toEqual(['co-1']));
    expect(await text(page, '#status')).toMatch(/every 3 s/);
    for (const path of ['/v1/services', '/v1/services/checkout']) {
      const ofPath = reads.filter((r) => r.path === path);
      // One refused attempt per query, and from then on plain reads, several of them.
      expect({ path, triedBlocking: ofPath.filter((r) => r.search.has('index')).length }).toEqual({ path, triedBlocking: 1 });
      expect(ofPath.filter((r) => !r.search.has('index')).length).toBeGreaterThanOrEqual(2);
    }
  });
});

describe('dashboard without a usable token', () => {
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    context = await browser.newContext();
    page = await context.newPage();
  });

  afterAll(async () => {
    await context?.close();
  });

  const useToken = async (token: string) => {
    await page.fill('#token-input', token);
    await page.click('#token-form button[type="submit"]');
  };

  it('asks for a token, and still shows the public figures', async () => {
    await page.goto(`${gw.url}/ui`);
    await eventually(async () => {
      expect(await page.locator('#token-panel').isVisible()).toBe(true);
      expect(await text(page, '#token-message')).toContain('Enter an API token');
      expect(await figure(page, 'keepalive-streams')).toBe('2');
    });
  });

  it('explains a 401 for an unknown token and a 403 for an agent token, and recovers with a reader token', async () => {
    await useToken('not-a-token-of-this-gateway');
    await eventually(async () => expect(await text(page, '#token-message')).toMatch(/did not accept this token \(401/));
    await useToken(tokens.agent);
    await eventually(async () => expect(await text(page, '#token-message')).toMatch(/may not read the registry \(403: token "payments-agent"/));
    expect(await page.locator('#service-rows tr').count()).toBe(0);
    await useToken(tokens.reader);
    await eventually(async () => {
      expect(await page.locator('#token-panel').isHidden()).toBe(true);
      expect(await text(page, serviceCell('checkout', 'instances'))).toBe('1');
    });
  });
});

describe('dashboard modules (pure logic, run in Chromium)', () => {
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    // Any page of the gateway's origin, so the modules load under the dashboard's CSP.
    await page.goto(`${gw.url}/ui/`);
  });

  afterAll(async () => {
    await context?.close();
  });

  /** Runs `body` (JavaScript source) in the page with the dashboard's modules imported; returns its JSON result. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- results are asserted field by field
  const inPage = (body: string): Promise<any> =>
    page.evaluate(`(async () => {
      const { parsePrometheusText, snapshotOf, deriveFigures, sumOf } = await import('/ui/metrics.js');
      const { sparklinePoints } = await import('/ui/charts.js');
      const { formatAge, ageOf, formatRate, formatRatio } = await import('/ui/format.js');
      const { detailBatch, statusCounts } = await import('/ui/services.js');
      const { takeTokenFromFragment } = await import('/ui/api.js');
      ${body}
    })()`);

  const scrape = (lines: string[]) => JSON.stringify(['# HELP x y', '# TYPE x counter', ...lines, ''].join('\n'));

  it('parses Prometheus text: labels with escapes and braces, +Inf, absent families', async () => {
    const result = await inPage(`
      const s = parsePrometheusText(${scrape(['a{x="1",y="q\\"}{z"} 2', 'a{x="2"} 3', 'b +Inf', 'c 1.5e3'])});
      return { labels: s[0].labels, a: sumOf(s, 'a'), a1: sumOf(s, 'a', { x: '1' }), b: sumOf(s, 'b'), c: sumOf(s, 'c'), none: sumOf(s, 'none') ?? 'absent' };
    `);
    expect(result).toEqual({ labels: { x: '1', y: 'q"}{z' }, a: 5, a1: 2, b: Infinity, c: 1500, none: 'absent' });
  });

  it('computes rates between two scrapes of one process, and none across a restart or a counter reset', async () => {
    const result = await inPage(`
      const at = (lines, ms) => snapshotOf(parsePrometheusText(lines.join('\\n')), ms);
      const base = ['process_start_time_seconds 100', 'registry_heartbeats_total{result="accepted"} 100', 'registry_heartbeats_total{result="not-found"} 7',
        'registry_lease_renewals_total{result="confirmed"} 10', 'registry_lease_renewals_total{result="unanswered"} 5',
        'registry_watch_up 1', 'registry_watch_revision 1000'];
      const later = ['process_start_time_seconds 100', 'registry_heartbeats_total{result="accepted"} 160', 'registry_lease_renewals_total{result="confirmed"} 16',
        'registry_lease_renewals_total{result="unanswered"} 500', 'registry_watch_up 0', 'registry_watch_revision 1040'];
      const f = deriveFigures(at(base, 0), at(later, 2000));
      const unlabelled = deriveFigures(at(['process_start_time_seconds 1', 'registry_lease_renewals_total 10'], 0), at(['process_start_time_seconds 1', 'registry_lease_renewals_total 40'], 3000));
      const otherProcess = deriveFigures(at(base, 0), at(later.map((l) => l.replace('seconds 100', 'seconds 200')), 2000));
      const reset = deriveFigures(at(later, 0), at(base, 2000));
      const first = deriveFigures(undefined, at(base, 0));
      return { f, unlabelled: unlabelled.renewalsPerSecond, otherProcess: otherProcess.heartbeatsPerSecond ?? 'none', reset: reset.heartbeatsPerSecond ?? 'none', first };
    `);
    expect(result.f).toMatchObject({ heartbeatsPerSecond: 30, renewalsPerSecond: 3, watchUp: 0, watchRevision: 1040, changesPerSecond: 20 });
    expect(result.unlabelled).toBe(10);
    expect(result.otherProcess).toBe('none');
    expect(result.reset).toBe('none');
    expect(result.first).toMatchObject({ watchUp: 1, watchRevision: 1000 });
    expect(result.first.changesPerSecond).toBeUndefined();
    expect(result.first.heartbeatsPerSecond).toBeUndefined();
    expect(result.first.selfPreservation).toBeUndefined();
  });

  it('draws sparklines over the whole width, skipping gaps, with a flat series in the middle', async () => {
    const result = await inPage(`
      return {
        line: sparklinePoints([0, 5, 10], 100, 24),
        gap: sparklinePoints([1, null, 3], 100, 24),
        flat: sparklinePoints([5, 5, 5], 100, 24),
        single: sparklinePoints([7], 100, 24),
        empty: sparklinePoints([], 100, 24),
      };
    `);
    expect(result).toEqual({ line: '0,22 50,12 100,2', gap: '0,22 100,2', flat: '0,12 50,12 100,12', single: '0,12', empty: '' });
  });

  it('blocks with the last index, waits out a 429, turns to polling on a 400, pauses on a refused token', async () => {
    const result = await inPage(`
      const { startBlockingQuery } = await import('/ui/poller.js');
      const calls = [];
      const errors = [];
      const fail = (status, extra = {}) => Object.assign(new Error('answered ' + status), { status, ...extra });
      const script = [
        () => ({ index: '5' }),
        () => { throw fail(429, { retryAfterMs: 10 }); },
        () => ({ index: '6' }),
        () => { throw fail(400, { field: 'index' }); },
        () => ({ index: '7' }),
        () => { throw fail(401, { refused: true }); },
        () => ({ index: '9' }),
        () => ({ index: '10' }),
      ];
      let done;
      const finished = new Promise((r) => (done = r));
      const query = startBlockingQuery(
        async ({ index, wait }) => {
          calls.push(index === undefined ? 'plain' : index + '/' + wait);
          const answer = script[calls.length - 1]();
          if (calls.length === script.length) done();
          return answer;
        },
        () => undefined,
        (err) => { errors.push(err.status); return err.refused === true; },
        { intervalMs: 20, wait: '30s' },
      );
      await new Promise((r) => setTimeout(r, 300));
      const pausedAfter = calls.length;
      query.restart();
      await finished;
      query.stop();
      return { calls, errors, pausedAfter, mode: query.mode };
    `);
    expect(result).toEqual({
      calls: ['plain', '5/30s', '5/30s', '6/30s', 'plain', 'plain', 'plain', 'plain'],
      errors: [429, 401],
      pausedAfter: 6,
      mode: 'polling',
    });
  });

  it('takes a base64 token from #token= as written (+, / and = included) and keeps the other fragment parts', async () => {
    const result = await inPage(`
      const take = (hash) => {
        const replaced = [];
        const history = { state: null, replaceState: (_s, _t, url) => replaced.push(url) };
        const token = takeTokenFromFragment({ hash, pathname: '/ui', search: '?x=1' }, history);
        return { token, replaced };
      };
      return [take('#token=ab+c/d=='), take('#view=p&token=t%2Bk&z=1'), take('#token=%zz'), take('#token='), take('#view=p'), take('')];
    `);
    expect(result).toEqual([
      { token: 'ab+c/d==', replaced: ['/ui?x=1'] },
      { token: 't+k', replaced: ['/ui?x=1#view=p&z=1'] },
      { token: '%zz', replaced: ['/ui?x=1'] },
      { token: null, replaced: ['/ui?x=1'] },
      { token: null, replaced: [] },
      { token: null, replaced: [] },
    ]);
  });

  it('formats ages, rates and ratios, and batches service reads in turn', async () => {
    const result = await inPage(`
      const names = ['a', 'b', 'c', 'd', 'e'];
      const first = detailBatch(names, 0, 2, undefined);
      const second = detailBatch(names, first.cursor, 2, 'a');
      const third = detailBatch(names, second.cursor, 2, 'gone');
      return {
        ages: [formatAge(42_000), formatAge(5 * 60_000 + 5), formatAge(3 * 3600_000 + 12 * 60_000), formatAge(50 * 3600_000), formatAge(-1)],
        ageOf: [ageOf('2026-01-01T00:00:00.000Z', Date.parse('2026-01-01T00:01:30Z')), ageOf('', 0), ageOf(undefined, 0)],
        rates: [formatRate(0.25), formatRate(12.6), formatRate(undefined)],
        ratio: formatRatio(0.9999),
        batches: [first, second, third, detailBatch(['a'], 7, 2, undefined)],
        counts: statusCounts([{ status: 'UP' }, { status: 'DOWN' }, { status: 'UP' }]),
      };
    `);
    expect(result.ages).toEqual(['42 s', '5 min', '3 h 12 min', '2 d 2 h', '—']);
    expect(result.ageOf).toEqual(['1 min', '—', '—']);
    expect(result.rates).toEqual(['0.3', '13', '—']);
    expect(result.ratio).toBe('99.9 %');
    expect(result.batches).toEqual([
      { names: ['a', 'b'], cursor: 2 },
      { names: ['c', 'd', 'a'], cursor: 4 },
      { names: ['e', 'a', 'gone'], cursor: 1 },
      { names: ['a'], cursor: 0 },
    ]);
    expect(result.counts).toEqual({ UP: 2, DRAINING: 0, DOWN: 1 });
  });
});
