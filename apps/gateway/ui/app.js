/* global document, window */
// The dashboard: wires the API, the pollers and the DOM. Every value from the server is put into the
// page as text (textContent, attributes), never as HTML: instance metadata is written by pods.

import { ApiAuthError, ApiClient, TokenStore, takeTokenFromFragment } from './api.js';
import { createSparkline, drawSparkline } from './charts.js';
import { ageOf, formatCount, formatRate, MISSING } from './format.js';
import { deriveFigures, parsePrometheusText, snapshotOf } from './metrics.js';
import { startBlockingQuery, startPolling } from './poller.js';
import { detailBatch, STATUSES, statusCounts } from './services.js';

const REFRESH_MS = 3_000;
/** How long the gateway holds a registry read: well below the idle timeout of common proxies (60 s). */
const BLOCKING_WAIT = '30s';
/** Three minutes of history at the refresh interval. */
const HISTORY_POINTS = 60;
/** Services whose instances are read per refresh (one request each); the rest wait their turn. */
const DETAIL_BATCH = 40;
/**
 * Browsers open at most 6 HTTP/1.1 connections per origin: 2 held queries + 3 reads + /metrics fit,
 * so a held request never makes the figures wait for a connection.
 */
const DETAIL_CONCURRENCY = 3;

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined) node.setAttribute(name, String(value));
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

const tokens = new TokenStore();
const api = new ApiClient(tokens);

// ---------------------------------------------------------------- figures (GET /metrics, public)

const FIGURES = [
  { key: 'instances', label: 'Instances', text: (f) => formatCount(f.instances), series: (f) => f.instances, detail: () => 'in the registry, as this replica\'s watch knows it' },
  { key: 'heartbeats', label: 'Heartbeats/s', text: (f) => formatRate(f.heartbeatsPerSecond), series: (f) => f.heartbeatsPerSecond, detail: () => 'accepted' },
  { key: 'renewals', label: 'Renewals/s', text: (f) => formatRate(f.renewalsPerSecond), series: (f) => f.renewalsPerSecond, detail: () => 'shared-lease renewals confirmed by etcd (per lease, not per instance)' },
  { key: 'etcd-auth', label: 'etcd Authenticate', text: (f) => formatCount(f.etcdAuthTotal), series: (f) => f.etcdAuthTotal, detail: () => 'total since start; steady growth is an alarm' },
  { key: 'keepalive-streams', label: 'Keepalive streams', text: (f) => formatCount(f.keepaliveStreams), series: (f) => f.keepaliveStreams, detail: () => 'shared LeaseKeepAlive streams' },
  {
    key: 'watch',
    label: 'Registry watch',
    text: (f) => (f.watchUp === undefined ? MISSING : f.watchUp > 0 ? 'up' : 'DOWN'),
    series: (f) => f.changesPerSecond,
    detail: (f) => (f.watchUp === 0 ? 'lookups answered from memory, marked stale' : `revision ${formatCount(f.watchRevision)}; ${formatRate(f.changesPerSecond)} changes/s`),
  },
  {
    key: 'self-preservation',
    label: 'Self-preservation',
    text: (f) => (f.selfPreservation === undefined ? MISSING : f.selfPreservation > 0 ? 'ON' : 'off'),
    series: (f) => f.selfPreservation,
    detail: (f) => (f.expiryPaused > 0 ? 'expiry paused: heard-sets gap (Redis?)' : f.selfPreservation > 0 ? 'expirations held back' : 'expirations proceed normally'),
    // Only gateways that have the mechanism export the gauge.
    optional: true,
  },
];

const figureCards = new Map();
const figureHistory = new Map(FIGURES.map((f) => [f.key, []]));
let lastSnapshot;

function buildFigureCards() {
  for (const figure of FIGURES) {
    const value = el('div', { class: 'value' }, MISSING);
    const detail = el('div', { class: 'detail' });
    const sparkline = createSparkline();
    const card = el('div', { class: 'card', 'data-figure': figure.key }, el('div', { class: 'label' }, figure.label), value, detail, sparkline);
    if (figure.optional) card.hidden = true;
    figureCards.set(figure.key, { card, value, detail, sparkline });
    $('figure-cards').append(card);
  }
}

async function refreshFigures() {
  let scrape;
  try {
    scrape = await api.scrapeMetrics();
  } catch (err) {
    $('figures-note').textContent = `not updated: ${err.message}`;
    return;
  }
  const snapshot = snapshotOf(parsePrometheusText(scrape.text), scrape.atMs);
  const figures = deriveFigures(lastSnapshot, snapshot);
  lastSnapshot = snapshot;
  for (const figure of FIGURES) {
    const { card, value, detail, sparkline } = figureCards.get(figure.key);
    const history = figureHistory.get(figure.key);
    history.push(figure.series(figures));
    if (history.length > HISTORY_POINTS) history.shift();
    if (figure.optional) card.hidden = figure.series(figures) === undefined;
    value.textContent = figure.text(figures);
    detail.textContent = figure.detail(figures);
    card.classList.toggle('alert', figure.key === 'self-preservation' && (figures.selfPreservation > 0 || figures.expiryPaused > 0));
    drawSparkline(sparkline, history);
  }
  $('figures-note').textContent = `the replica that answered /metrics, ${new Date(scrape.atMs).toLocaleTimeString()}`;
}

// ---------------------------------------------------------------- registry (GET /v1/services, token)

const registry = {
  services: [],
  listStale: false,
  /** service -> { instances, stale } from its last read */
  details: new Map(),
  cursor: 0,
  selected: undefined,
  /** A 401/403 message: the registry queries pause until a new token is given. */
  authProblem: undefined,
  problem: undefined,
  updatedAt: undefined,
};

// Two blocking queries keep the registry current: the list of services, and the selected service.
// The status badges of the other services are read (plainly, in batches) whenever a list answer
// comes in: when the list changes, and at the latest when its held query runs out (~30 s).

async function showServiceList({ body }) {
  registry.services = body.services;
  registry.listStale = body.stale;
  const names = body.services.map((s) => s.service);
  // The selected service has its own query: reading it here too would only repeat it.
  const others = names.filter((name) => name !== registry.selected);
  const batch = detailBatch(others, registry.cursor, DETAIL_BATCH, undefined);
  registry.cursor = batch.cursor;
  await forEachLimited(batch.names, DETAIL_CONCURRENCY, async (name) => {
    const { body: answer } = await api.getService(name);
    registry.details.set(name, { instances: answer.instances, stale: answer.stale });
  });
  for (const name of registry.details.keys()) {
    if (!names.includes(name) && name !== registry.selected) registry.details.delete(name);
  }
  answered();
}

function showSelectedService(service, { body }) {
  registry.details.set(service, { instances: body.instances, stale: body.stale });
  answered();
}

function answered() {
  registry.problem = undefined;
  registry.updatedAt = new Date();
  if (awaitingToken) hideTokenPanel();
  renderServices();
  renderInstances();
  renderRegistryStatus();
}

/** Returns true when the query must wait for another token (each query pauses on its own refusal). */
function registryFailed(err) {
  if (err instanceof ApiAuthError) {
    registry.authProblem = err.message;
    showTokenPanel(tokens.get() ? err.message : 'Enter an API token (reader or admin) to see the registry.');
  } else {
    registry.problem = err.message;
  }
  renderServices();
  renderInstances();
  renderRegistryStatus();
  return err instanceof ApiAuthError;
}

let listQuery;
/** The blocking query on the selected service, replaced when another one is selected. */
let selectedQuery;

function watchSelected() {
  selectedQuery?.stop();
  selectedQuery = undefined;
  const service = registry.selected;
  if (service === undefined || registry.authProblem || !tokens.get()) return;
  selectedQuery = startBlockingQuery(
    (options) => api.getService(service, options),
    (answer) => showSelectedService(service, answer),
    registryFailed,
    { intervalMs: REFRESH_MS, wait: BLOCKING_WAIT },
  );
}

async function forEachLimited(items, limit, task) {
  const queue = [...items];
  const worker = async () => {
    while (queue.length) await task(queue.shift());
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function statusBadges(counts) {
  return STATUSES.filter((s) => counts[s] > 0).map((s) => el('span', { class: `badge status-${s.toLowerCase()}` }, `${counts[s]} ${s}`));
}

function renderServices() {
  const rows = registry.services.map(({ service, instances }) => {
    const detail = registry.details.get(service);
    const status = detail ? statusBadges(statusCounts(detail.instances)) : [el('span', { class: 'muted' }, 'reading…')];
    const name = el('button', { type: 'button', class: 'link', 'data-select': service }, service);
    return el(
      'tr',
      { 'data-service': service, class: service === registry.selected ? 'selected' : undefined, 'aria-selected': String(service === registry.selected) },
      el('td', {}, name),
      el('td', { class: 'num', 'data-col': 'instances' }, String(instances)),
      el('td', { 'data-col': 'status' }, ...(status.length ? status : [el('span', { class: 'muted' }, 'none')])),
      el('td', { 'data-col': 'cache' }, detail?.stale ? el('span', { class: 'badge stale' }, 'stale') : el('span', { class: 'muted' }, 'fresh')),
    );
  });
  $('service-rows').replaceChildren(...rows);
  $('no-services').hidden = registry.services.length > 0 || registry.updatedAt === undefined;
}

function renderInstances() {
  const service = registry.selected;
  $('instances').hidden = service === undefined;
  if (service === undefined) return;
  $('instances-service').textContent = service;
  const detail = registry.details.get(service);
  const listed = registry.services.some((s) => s.service === service);
  $('instances-note').textContent = !listed && registry.updatedAt ? 'no longer registered' : detail?.stale ? 'stale: etcd could not confirm this recently' : '';
  const now = api.serverNow();
  const rows = (detail?.instances ?? []).map((instance) =>
    el(
      'tr',
      { 'data-instance': instance.id },
      el('td', { class: 'mono' }, instance.id),
      el('td', { class: 'mono' }, `${instance.address}:${instance.port}`),
      el('td', {}, instance.zone ?? MISSING),
      el('td', {}, ...chips(instance.tags)),
      el('td', {}, el('span', { class: `badge status-${String(instance.status).toLowerCase()}` }, instance.status)),
      el('td', { class: 'num' }, String(instance.weight)),
      el('td', { class: 'num', title: instance.registeredAt || 'not recorded' }, ageOf(instance.registeredAt, now)),
      el('td', {}, ...chips(Object.entries(instance.metadata ?? {}).map(([k, v]) => `${k}=${v}`))),
    ),
  );
  $('instance-rows').replaceChildren(...rows);
  $('no-instances').hidden = rows.length > 0 || detail === undefined;
}

function chips(texts) {
  return texts.length ? texts.map((t) => el('span', { class: 'chip' }, t)) : [el('span', { class: 'muted' }, MISSING)];
}

function renderRegistryStatus() {
  const status = $('status');
  const at = registry.updatedAt?.toLocaleTimeString();
  if (registry.authProblem) status.textContent = 'Registry: token refused';
  else if (registry.problem) status.textContent = `Registry: ${registry.problem}; retrying${at ? ` (showing ${at})` : ''}`;
  else if (at) status.textContent = `Updated ${at}, ${howKeptCurrent()}${registry.listStale ? ' (stale: etcd could not confirm recently)' : ''}`;
  status.classList.toggle('problem', Boolean(registry.authProblem || registry.problem || registry.listStale));
}

function howKeptCurrent() {
  return listQuery?.mode === 'polling' ? `every ${REFRESH_MS / 1000} s` : 'live';
}

// ---------------------------------------------------------------- token

/** The panel was opened for a missing, refused or just entered token: the next good answer closes it. */
let awaitingToken = false;

function showTokenPanel(message, { asked = true } = {}) {
  awaitingToken = asked;
  const appearing = $('token-panel').hidden;
  $('token-message').textContent = message;
  $('token-panel').hidden = false;
  $('forget-token').hidden = !tokens.get();
  // Only when it appears: each refresh calls this again, and must not pull focus from elsewhere.
  if (appearing) $('token-input').focus();
}

function hideTokenPanel() {
  awaitingToken = false;
  $('token-panel').hidden = true;
  $('token-message').textContent = '';
}

// ---------------------------------------------------------------- start

const fromFragment = takeTokenFromFragment(window.location, window.history);
if (fromFragment) tokens.set(fromFragment);

buildFigureCards();
startPolling(refreshFigures, REFRESH_MS);
listQuery = startBlockingQuery((options) => api.listServices(options), showServiceList, registryFailed, { intervalMs: REFRESH_MS, wait: BLOCKING_WAIT });

/** A new token: what the old one was refused or shown says nothing about it. */
function useNewToken() {
  registry.authProblem = undefined;
  listQuery.restart();
  watchSelected();
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  if (!token) return;
  tokens.set(token);
  $('token-input').value = '';
  awaitingToken = true;
  $('token-message').textContent = 'Checking…';
  useNewToken();
});

$('forget-token').addEventListener('click', () => {
  tokens.forget();
  registry.services = [];
  registry.details.clear();
  registry.selected = undefined;
  registry.updatedAt = undefined;
  // Until another token is given: the held requests still carry the forgotten one.
  listQuery.pause();
  watchSelected();
  renderServices();
  renderInstances();
  showTokenPanel('Token forgotten. Enter an API token (reader or admin) to see the registry.');
});

$('change-token').addEventListener('click', () => {
  if (!$('token-panel').hidden && !awaitingToken) hideTokenPanel();
  else showTokenPanel(registry.authProblem ?? 'Enter another API token (reader or admin).', { asked: Boolean(registry.authProblem) });
});

$('close-token').addEventListener('click', () => hideTokenPanel());

$('service-rows').addEventListener('click', (event) => {
  const button = event.target.closest('[data-select]');
  if (!button) return;
  const service = button.getAttribute('data-select');
  if (service === registry.selected) return;
  registry.selected = service;
  renderServices();
  renderInstances();
  watchSelected();
});

$('close-instances').addEventListener('click', () => {
  registry.selected = undefined;
  watchSelected();
  renderServices();
  renderInstances();
});
