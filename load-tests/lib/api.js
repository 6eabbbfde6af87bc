/* global __VU, __ITER */
// Bazar's public API as k6 requests: every call is tagged with its endpoint (the per-endpoint SLOs
// filter on that tag), named after its route (one time series per route, not per id) and checked.
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { SharedArray } from 'k6/data';
import { ADMIN_TOKEN, BASE_URL } from './config.js';

/** The seed catalogue (the lab's seven books, migration 2 in services/shared/src/db/migrations.ts): what the scripts read and buy. */
export const BOOKS = new SharedArray('books', () => [
  { id: 1, topic: 'distributed systems' },
  { id: 2, topic: 'distributed systems' },
  { id: 3, topic: 'undergraduate school' },
  { id: 4, topic: 'undergraduate school' },
  { id: 5, topic: 'distributed systems' },
  { id: 6, topic: 'undergraduate school' },
  { id: 7, topic: 'undergraduate school' },
]);

export const TOPICS = new SharedArray('topics', () => ['distributed systems', 'undergraduate school']);

// Custom metrics (k6/metrics); the SLOs in bazar.js put thresholds on some of them.
export const cacheHits = new Rate('bazar_cache_hits');
export const purchaseDuration = new Trend('bazar_purchase_duration', true);
export const purchasesOk = new Counter('bazar_purchases_ok');
export const outOfStock = new Counter('bazar_out_of_stock');
export const restocks = new Counter('bazar_restocks');
export const readYourWrites = new Rate('bazar_read_your_writes');

/** 404 and 409 are answers, not failures, where a script expects them (http_req_failed stays clean). */
const OK = http.expectedStatuses(200);
const OK_OR_SOLD_OUT = http.expectedStatuses(200, 409);

function params(endpoint, name, extra) {
  const p = { tags: { endpoint: endpoint, name: name }, responseCallback: OK, timeout: '10s' };
  return Object.assign(p, extra || {});
}

/** The body as JSON, or undefined when it is not JSON (a failed check then says why). */
export function json(res) {
  try {
    return res.json();
  } catch {
    return undefined;
  }
}

function isErrorBody(body, code) {
  return (
    body !== undefined &&
    body !== null &&
    typeof body.error === 'object' &&
    body.error !== null &&
    body.error.code === code &&
    typeof body.error.message === 'string'
  );
}

function pick(arr) {
  return arr[Math.floor(Math.random() * arr.length)];
}

export function randomBook() {
  return pick(BOOKS);
}

export function randomTopic() {
  return pick(TOPICS);
}

/** GET /info/:id; returns the book (or undefined). */
export function info(id, opts) {
  const headers = opts && opts.noCache ? { 'Cache-Control': 'no-cache' } : {};
  const res = http.get(`${BASE_URL}/info/${id}`, params('info', 'GET /info/:id', { headers: headers }));
  const book = json(res);
  const xCache = res.headers['X-Cache'];
  check(res, {
    'info: status 200': (r) => r.status === 200,
    'info: the book asked for': () => book !== undefined && book.id === id,
    'info: price and stock are numbers': () =>
      book !== undefined && typeof book.price === 'number' && Number.isInteger(book.stock) && book.stock >= 0,
    'info: X-Cache is hit or miss': () => xCache === 'hit' || xCache === 'miss',
    'info: X-Served-By names a pod': () => typeof res.headers['X-Served-By'] === 'string',
  });
  if (xCache === 'hit' || xCache === 'miss') cacheHits.add(xCache === 'hit', { endpoint: 'info' });
  return res.status === 200 ? book : undefined;
}

/**
 * GET /search/:topic, one page: at most `limit` books (the store's default page size when absent)
 * after `cursor` (the `next` of the page before; absent: the first page). Returns `{ books, next }`,
 * `next` null on the last page.
 */
export function searchPage(topic, opts = {}) {
  const query = [];
  if (opts.limit !== undefined) query.push(`limit=${opts.limit}`);
  if (opts.cursor !== undefined) query.push(`cursor=${encodeURIComponent(opts.cursor)}`);
  const res = http.get(
    `${BASE_URL}/search/${encodeURIComponent(topic)}${query.length > 0 ? `?${query.join('&')}` : ''}`,
    params('search', 'GET /search/:topic'),
  );
  const body = json(res);
  check(res, {
    'search: status 200': (r) => r.status === 200,
    'search: the topic asked for': () => body !== undefined && body.topic === topic,
    'search: books with ids and titles': () =>
      body !== undefined &&
      Array.isArray(body.books) &&
      (body.books.length > 0 || opts.cursor !== undefined) &&
      body.books.every((b) => Number.isInteger(b.id) && typeof b.title === 'string'),
    'search: next is a cursor or null': () =>
      body !== undefined && (body.next === null || (typeof body.next === 'string' && body.next !== '')),
    'search: at most limit books': () =>
      body !== undefined && (opts.limit === undefined || body.books.length <= opts.limit),
  });
  const books = body && Array.isArray(body.books) ? body.books : [];
  return { books, next: body && typeof body.next === 'string' ? body.next : null };
}

/** GET /search/:topic; returns the books of its first page. */
export function search(topic) {
  return searchPage(topic).books;
}

/**
 * Every page of a topic, `limit` books at a time, following `next` (at most `maxPages` pages); returns
 * all its books. Checked: ids strictly increase across the pages (no book twice, keyset order).
 */
export function searchAll(topic, limit, maxPages = 100) {
  const books = [];
  let cursor;
  for (let n = 0; n < maxPages; n++) {
    const page = searchPage(topic, cursor === undefined ? { limit } : { limit, cursor });
    for (let i = 0; i < page.books.length; i++) books.push(page.books[i]);
    if (page.next === null) break;
    cursor = page.next;
  }
  check(books, {
    'search: pages in id order, no book twice': (b) => b.every((x, i) => i === 0 || x.id > b[i - 1].id),
  });
  return books;
}

/** A unique Idempotency-Key per purchase attempt (printable ASCII, no spaces). */
export function idempotencyKey() {
  return `k6-${__VU}-${__ITER}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
}

/**
 * POST /purchase/:id with an Idempotency-Key. Returns { status, purchase } where purchase is the
 * order on 200; a 409 `out_of_stock` is an expected answer (the storm restocks when it sees one).
 */
export function purchase(id, key) {
  const res = http.post(
    `${BASE_URL}/purchase/${id}`,
    null,
    params('purchase', 'POST /purchase/:id', {
      headers: { 'Idempotency-Key': key || idempotencyKey() },
      responseCallback: OK_OR_SOLD_OUT,
    }),
  );
  const body = json(res);
  const ok = res.status === 200;
  check(res, {
    'purchase: 200, or 409 out_of_stock': (r) =>
      r.status === 200 || (r.status === 409 && isErrorBody(body, 'out_of_stock')),
    'purchase: an order for the book asked for': () =>
      !ok || (body !== undefined && typeof body.orderId === 'string' && body.bookId === id),
    'purchase: remaining stock never below zero': () =>
      !ok || (body !== undefined && Number.isInteger(body.remainingStock) && body.remainingStock >= 0),
  });
  if (ok) {
    purchasesOk.add(1);
    purchaseDuration.add(res.timings.duration, { book: String(id) });
  } else if (res.status === 409) {
    outOfStock.add(1);
  }
  return {
    status: res.status,
    purchase: ok ? body : undefined,
    replayed: res.headers['Idempotent-Replayed'],
  };
}

/** GET /orders/:orderId. */
export function order(orderId, bookId) {
  const res = http.get(`${BASE_URL}/orders/${orderId}`, params('order', 'GET /orders/:orderId'));
  const body = json(res);
  check(res, {
    'order: status 200': (r) => r.status === 200,
    'order: the order asked for': () =>
      body !== undefined && body.orderId === orderId && body.bookId === bookId,
  });
  return body;
}

/** POST /books/:id/restock (admin). Returns the book after the restock, or undefined. */
export function restock(id, quantity) {
  const res = http.post(
    `${BASE_URL}/books/${id}/restock`,
    JSON.stringify({ quantity: quantity }),
    params('restock', 'POST /books/:id/restock', {
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_TOKEN}` },
    }),
  );
  const body = json(res);
  check(res, {
    'restock: status 200': (r) => r.status === 200,
    'restock: the book, with at least the quantity added in stock': () =>
      body !== undefined && body.id === id && Number.isInteger(body.stock) && body.stock >= quantity,
  });
  if (res.status === 200) restocks.add(1);
  return res.status === 200 ? body : undefined;
}

/** The contract's error answers: a bad id is 400 `invalid_id`, an unknown book 404 `book_not_found`. */
export function errorAnswers() {
  const bad = http.get(
    `${BASE_URL}/info/not-a-number`,
    params('errors', 'GET /info/:id (bad id)', { responseCallback: http.expectedStatuses(400) }),
  );
  check(bad, {
    'errors: bad id is 400 invalid_id': (r) => r.status === 400 && isErrorBody(json(r), 'invalid_id'),
  });
  const unknown = http.get(
    `${BASE_URL}/info/999999`,
    params('errors', 'GET /info/:id (unknown)', { responseCallback: http.expectedStatuses(404) }),
  );
  check(unknown, {
    'errors: unknown book is 404 book_not_found': (r) =>
      r.status === 404 && isErrorBody(json(r), 'book_not_found'),
  });
  const cursor = http.get(
    `${BASE_URL}/search/distributed%20systems?cursor=not-a-cursor`,
    params('errors', 'GET /search/:topic (bad cursor)', { responseCallback: http.expectedStatuses(400) }),
  );
  check(cursor, {
    'errors: a bad cursor is 400 invalid_cursor': (r) =>
      r.status === 400 && isErrorBody(json(r), 'invalid_cursor'),
  });
}
