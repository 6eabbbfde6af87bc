// Bazar load tests for k6 (https://k6.io), in k6's documented JavaScript API only.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e ADMIN_TOKEN=<token> -e SCENARIO=browse load-tests/bazar.js
//
// SCENARIO picks the named scenarios to run: smoke (default), browse, purchase-storm, mixed, soak, a
// comma-separated list, or all (they then run at the same time). Thresholds are the SLOs: a breach
// makes k6 exit non-zero. handleSummary writes bazar-<scenarios>-summary.{json,txt}. See README.md.
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import {
  ADMIN_TOKEN,
  BASE_URL,
  CONSISTENCY,
  HOT_BOOK,
  SUMMARY_DIR,
  duration,
  int,
  num,
  selectedScenarios,
} from './lib/config.js';
import {
  BOOKS,
  TOPICS,
  errorAnswers,
  idempotencyKey,
  info,
  order,
  purchase,
  randomBook,
  randomTopic,
  readYourWrites,
  restock,
  search,
  searchAll,
} from './lib/api.js';
import { textSummary } from './lib/summary.js';

const SELECTED = selectedScenarios();

/** Seconds a browsing or soaking VU waits between iterations. */
const THINK = num('THINK', 0.1);
/** Restocks add this many copies. */
const RESTOCK_QUANTITY = int('RESTOCK_QUANTITY', 1000);
/** The storm restocks the hot book when a purchase leaves exactly this many (or on a 409). */
const LOW_WATER = int('LOW_WATER', 100);
/** setup() tops the hot book up to at least this stock before the storm. */
const STORM_STOCK = int('STORM_STOCK', 5000);

const SCENARIOS = {
  // One VU walks every endpoint once per iteration, error answers included.
  smoke: {
    executor: 'shared-iterations',
    exec: 'smoke',
    vus: 1,
    iterations: int('SMOKE_ITERATIONS', 1),
    maxDuration: '1m',
    tags: { profile: 'smoke' },
  },
  // Read-heavy: every book and topic, from the cache mostly.
  browse: {
    executor: 'ramping-vus',
    exec: 'browse',
    startVUs: 0,
    stages: [
      { duration: duration('RAMP', '30s'), target: int('VUS', 50) },
      { duration: duration('DURATION', '2m'), target: int('VUS', 50) },
      { duration: '15s', target: 0 },
    ],
    gracefulRampDown: '10s',
    tags: { profile: 'read' },
  },
  // Every VU buys the same book as fast as it can; the admin route restocks it.
  'purchase-storm': {
    executor: 'constant-vus',
    exec: 'purchaseStorm',
    vus: int('STORM_VUS', 20),
    duration: duration('STORM_DURATION', '1m'),
    gracefulStop: '10s',
    tags: { profile: 'write' },
  },
  // 90 % reads, 10 % purchases (each followed by a read-your-writes check), at a fixed arrival rate.
  mixed: {
    executor: 'constant-arrival-rate',
    exec: 'mixed',
    rate: int('RATE', 100),
    timeUnit: '1s',
    duration: duration('DURATION', '2m'),
    preAllocatedVUs: int('PRE_VUS', 20),
    maxVUs: int('MAX_VUS', 100),
    tags: { profile: 'mixed' },
  },
  // The mixed profile at a modest rate for a long time: leaks, slow drift, connection churn.
  soak: {
    executor: 'constant-arrival-rate',
    exec: 'soak',
    rate: int('SOAK_RATE', 30),
    timeUnit: '1s',
    duration: duration('SOAK_DURATION', '30m'),
    preAllocatedVUs: 10,
    maxVUs: 50,
    tags: { profile: 'soak' },
  },
};

/** Per-endpoint latency SLOs (ms), for the endpoints the selected scenarios call. */
const ENDPOINT_SLOS = {
  info: ['p(95)<50', 'p(99)<100'],
  search: ['p(95)<50', 'p(99)<100'],
  purchase: ['p(95)<250', 'p(99)<500'],
  order: ['p(95)<100', 'p(99)<250'],
  restock: ['p(95)<500'],
};

const USES = {
  smoke: ['info', 'search', 'purchase', 'order', 'restock'],
  browse: ['info', 'search'],
  'purchase-storm': ['purchase', 'restock'],
  mixed: ['info', 'search', 'purchase', 'restock'],
  soak: ['info', 'search', 'purchase', 'restock'],
};

function buildThresholds() {
  const thresholds = {
    // Expected answers (a 409 in a storm, a 404 asked for) are not failures; see responseCallback.
    http_req_failed: [{ threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: '30s' }],
    checks: ['rate>0.99'],
  };
  const used = {};
  for (const name of SELECTED) for (const endpoint of USES[name]) used[endpoint] = true;
  for (const endpoint of Object.keys(ENDPOINT_SLOS)) {
    if (used[endpoint]) thresholds[`http_req_duration{endpoint:${endpoint}}`] = ENDPOINT_SLOS[endpoint];
  }
  if (used.purchase) {
    thresholds.bazar_purchases_ok = ['count>0'];
    thresholds.bazar_purchase_duration = ['p(95)<250'];
  }
  // The scenarios that read a book back after buying it hold the store to read-your-writes.
  const checksReads = SELECTED.some((n) => n === 'smoke' || n === 'mixed' || n === 'soak');
  if (checksReads && CONSISTENCY !== 'eventual') thresholds.bazar_read_your_writes = ['rate>0.999'];
  if (SELECTED.indexOf('browse') >= 0) thresholds['bazar_cache_hits{endpoint:info}'] = ['rate>0.5'];
  return thresholds;
}

export const options = {
  scenarios: SELECTED.reduce((acc, name) => {
    acc[name] = SCENARIOS[name];
    return acc;
  }, {}),
  thresholds: buildThresholds(),
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '30s',
};

const NEEDS_ADMIN = SELECTED.some((n) => n !== 'browse' && n !== 'smoke');

/** Fails fast, before any VU starts, when the store is unreachable or the admin token is wrong. */
export function setup() {
  const ready = http.get(`${BASE_URL}/readyz`, {
    tags: { endpoint: 'setup', name: 'GET /readyz' },
    timeout: '5s',
  });
  if (ready.status !== 200) {
    const why = ready.status === 0 ? ready.error : `HTTP ${ready.status}`;
    throw new Error(
      `Bazar is not reachable at ${BASE_URL} (GET /readyz: ${why}). Start it with \`npm start\` ` +
        '(or `kubectl port-forward svc/bazar-front 8080:80`), or set BASE_URL.',
    );
  }
  if (NEEDS_ADMIN && ADMIN_TOKEN === '') {
    throw new Error(
      `scenario(s) ${SELECTED.join(', ')} restock books: set ADMIN_TOKEN (npm start prints it)`,
    );
  }
  const hot = info(HOT_BOOK);
  if (hot === undefined) throw new Error(`GET /info/${HOT_BOOK} failed: is this a Bazar front?`);
  if (SELECTED.indexOf('purchase-storm') >= 0 && hot.stock < STORM_STOCK) {
    const after = restock(HOT_BOOK, STORM_STOCK - hot.stock);
    if (after === undefined) throw new Error('restocking the hot book failed: is ADMIN_TOKEN right?');
  }
  return { hotBook: HOT_BOOK, startedAt: Date.now() };
}

export function smoke() {
  group('smoke: catalogue', () => {
    for (let i = 0; i < BOOKS.length; i++) info(BOOKS[i].id);
    for (let i = 0; i < TOPICS.length; i++) search(TOPICS[i]);
    // Every topic again, two books a page, following each page's cursor.
    for (let i = 0; i < TOPICS.length; i++) searchAll(TOPICS[i], 2);
    const fresh = info(BOOKS[0].id, { noCache: true });
    check(fresh, { 'smoke: no-cache read answers': (b) => b !== undefined });
  });
  group('smoke: purchase', () => {
    const book = randomBook();
    const key = idempotencyKey();
    const first = purchase(book.id, key);
    if (first.status === 409 && ADMIN_TOKEN !== '') restock(book.id, RESTOCK_QUANTITY);
    if (first.purchase === undefined) return;
    const again = purchase(book.id, key);
    check(again, {
      'smoke: a retried purchase returns the first order': (r) =>
        r.purchase !== undefined && r.purchase.orderId === first.purchase.orderId,
      'smoke: and says it was replayed': (r) => r.replayed === 'true',
    });
    order(first.purchase.orderId, book.id);
    readYourWritesCheck(book.id, first.purchase);
  });
  if (ADMIN_TOKEN !== '') {
    group('smoke: admin', () => {
      restock(BOOKS[BOOKS.length - 1].id, 1);
    });
  }
  group('smoke: errors', () => {
    errorAnswers();
  });
}

export function browse() {
  group('browse', () => {
    info(randomBook().id);
    if (Math.random() < 0.25) search(randomTopic());
  });
  sleep(THINK);
}

export function purchaseStorm(data) {
  group('purchase storm', () => {
    const r = purchase(data.hotBook);
    if (r.status === 409 || (r.purchase !== undefined && r.purchase.remainingStock === LOW_WATER)) {
      restock(data.hotBook, RESTOCK_QUANTITY);
    }
  });
}

/** The first read after a purchase must show it (the front's cache was invalidated before the 200). */
function readYourWritesCheck(bookId, bought) {
  const after = info(bookId);
  if (after === undefined || typeof bought.version !== 'number') return;
  const seen = after.version >= bought.version;
  readYourWrites.add(seen, { endpoint: 'info' });
  if (CONSISTENCY !== 'eventual') {
    check(after, { 'read-your-writes: the read after a purchase shows it': () => seen });
  }
}

function mixedIteration() {
  const book = randomBook();
  if (Math.random() < 0.9) {
    group('mixed: read', () => {
      if (Math.random() < 0.8) info(book.id);
      else search(book.topic);
    });
    return;
  }
  group('mixed: purchase', () => {
    const r = purchase(book.id);
    if (r.status === 409) restock(book.id, RESTOCK_QUANTITY);
    else if (r.purchase !== undefined) readYourWritesCheck(book.id, r.purchase);
  });
}

export function mixed() {
  mixedIteration();
}

export function soak() {
  mixedIteration();
  sleep(THINK);
}

export function handleSummary(data) {
  const label = SELECTED.join('+');
  const text = textSummary(data, `Bazar k6 summary: ${label} against ${BASE_URL}`);
  const out = { stdout: text };
  out[`${SUMMARY_DIR}/bazar-${label}-summary.json`] = JSON.stringify(data, null, 2);
  out[`${SUMMARY_DIR}/bazar-${label}-summary.txt`] = text;
  return out;
}
