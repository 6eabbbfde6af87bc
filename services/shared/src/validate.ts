import { badRequest, HttpError } from './errors.js';

/** Largest id a book can have: the column is a PostgreSQL integer. */
export const MAX_BOOK_ID = 2_147_483_647;
export const MAX_TOPIC_LENGTH = 100;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/**
 * A positive integer id. Non-numeric, zero, negative, fractional → 400. A positive integer beyond the
 * column's range cannot name a book → 404, without touching the database.
 */
export function parseBookId(raw: string | undefined): number {
  if (raw === undefined || !/^\d{1,40}$/.test(raw) || /^0+$/.test(raw)) {
    throw badRequest('invalid_id', 'book id must be a positive integer');
  }
  const value = Number(raw);
  if (value > MAX_BOOK_ID) throw new HttpError(404, 'book_not_found', `no book with id ${raw}`);
  return value;
}

/** What separates the words of a topic: spaces (ASCII and Unicode), '-', '_' and '+'. */
const TOPIC_SEPARATORS = /[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff_+-]+/g;

/**
 * Topics match case-insensitively, and '-', '_', '+' and spaces separate words, so that
 * `/search/distributed-systems` and `/search/distributed%20systems` are the same search. A topic is
 * 1-100 characters (code points, as the OpenAPI document counts them) without control characters, and
 * needs one that is not a separator. Lowercasing is per character and keeps the length, so a
 * normalised topic is itself a valid topic (the catalog normalises what the front sends again).
 */
export function normalizeTopic(raw: string | undefined): string {
  if (raw === undefined) throw badRequest('invalid_topic', 'topic is required');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw badRequest('invalid_topic', 'topic has control characters');
  const chars = [...raw];
  if (chars.length > MAX_TOPIC_LENGTH) {
    throw badRequest('invalid_topic', `topic must be at most ${MAX_TOPIC_LENGTH} characters`);
  }
  const topic = raw.replace(TOPIC_SEPARATORS, ' ').trim();
  if (topic === '') throw badRequest('invalid_topic', 'topic must not be empty');
  return [...topic].map(lowerOne).join('');
}

/** Lowercase of one code point, unless lowercasing would make it longer (U+0130 'İ'). */
function lowerOne(c: string): string {
  const lower = c.toLowerCase();
  return lower.length === c.length ? lower : c;
}

/**
 * The Idempotency-Key header: absent → undefined; present, it must be 1-200 printable ASCII characters
 * (an empty one is refused, not taken as absent: a client that meant to send a key must learn it did
 * not). Pass the raw header (`ctx.headers['idempotency-key']`), not `ctx.get`, which cannot tell an
 * empty header from none.
 */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (
    typeof raw !== 'string' ||
    raw.length === 0 ||
    raw.length > MAX_IDEMPOTENCY_KEY_LENGTH ||
    !/^[\x21-\x7e]+$/.test(raw)
  ) {
    throw badRequest(
      'invalid_idempotency_key',
      `Idempotency-Key must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces`,
    );
  }
  return raw;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Order ids are UUIDs; anything else cannot name an order (404, as the OpenAPI document lists for this route). */
export function parseOrderId(raw: string | undefined): string {
  if (raw === undefined || !UUID.test(raw)) throw new HttpError(404, 'order_not_found', 'no such order');
  return raw.toLowerCase();
}

/** A price in currency units with at most two decimals. */
export function parsePrice(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1_000_000) {
    throw badRequest('invalid_price', 'price must be a number between 0 and 1000000');
  }
  // Exactly the number a two-decimal literal parses to (what the schema's multipleOf 0.01 means), not
  // one within a tolerance of it: 2.58e-301 was within 1e-6 of 0 cents, accepted, and stored as 0.
  const cents = Math.round(value * 100);
  if (cents / 100 !== value) throw badRequest('invalid_price', 'price must have at most two decimals');
  return value;
}

export const MAX_RESTOCK = 1_000_000;

export function parseQuantity(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_RESTOCK) {
    throw badRequest('invalid_quantity', `quantity must be an integer between 1 and ${MAX_RESTOCK}`);
  }
  return value;
}

/** The minimum book version a reader requires (the front's fence); absent means none. */
export function parseMinVersion(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 0;
  if (!/^\d{1,15}$/.test(raw)) throw badRequest('invalid_min_version', 'X-Min-Version must be an integer');
  return Number(raw);
}

/**
 * The API defines no query parameters but the page of a search (`limit`, `cursor` on
 * `GET /search/:topic`; Cache-Control, Idempotency-Key and Authorization are headers), so any other
 * query string is refused rather than ignored: `POST /purchase/1?qty=-5` must not buy one copy as if
 * `qty` were absent, and a mistyped parameter on a read must not be silently dropped. `allowed` names
 * the parameters a route does define.
 */
export function checkQuery(querystring: string, allowed: readonly string[] = []): void {
  if (querystring === '') return;
  const names = [...new URLSearchParams(querystring).keys()];
  const unknown = names.filter((name) => !allowed.includes(name));
  if (unknown.length === 0 && names.length > 0) return;
  const shown = unknown.length > 0 ? unknown.slice(0, 3).map((n) => JSON.stringify(n.slice(0, 40))) : [];
  const takes = allowed.length === 0 ? 'this route takes none' : `allowed: ${allowed.join(', ')}`;
  throw badRequest(
    'unknown_parameter',
    shown.length > 0
      ? `unknown query parameter${shown.length > 1 ? 's' : ''} ${shown.join(', ')} (${takes})`
      : `malformed query string (${takes})`,
  );
}

/** Router middleware: the matched route takes no query parameters (see checkQuery). */
export function strictQuery(ctx: { querystring: string }, next: () => Promise<unknown>): Promise<unknown> {
  checkQuery(ctx.querystring);
  return next();
}

/** What strictQueryFor reads of a routed request (@koa/router sets `matched`: the layers of its path). */
interface RoutedQuery {
  querystring: string;
  method: string;
  matched?: ReadonlyArray<{ path: string | RegExp; methods: string[] }>;
}

/**
 * Router middleware, strictQuery for a router some of whose routes declare query parameters:
 * `declared` maps a route's path (as registered, e.g. `/search/:topic`) to the parameters it takes;
 * any other name, on that route or any other, is 400 `unknown_parameter` before the route runs. The
 * route itself parses the values of the ones it declares.
 */
export function strictQueryFor(
  declared: Readonly<Record<string, readonly string[]>>,
): (ctx: RoutedQuery, next: () => Promise<unknown>) => Promise<unknown> {
  return (ctx, next) => {
    if (ctx.querystring !== '') {
      const route = ctx.matched?.find(
        (layer) =>
          layer.methods.includes(ctx.method) &&
          typeof layer.path === 'string' &&
          Object.hasOwn(declared, layer.path),
      );
      checkQuery(ctx.querystring, route ? declared[route.path as string] : []);
    }
    return next();
  };
}

/** Header a front sets on the writes it forwards: its pod name, so the writer need not push to it. */
export const ORIGIN_FRONT_HEADER = 'x-bazar-front';

/**
 * The forwarding front's name from `X-Bazar-Front`, when it is a plausible pod name; anything else is
 * ignored (the write is then pushed to every front, which is always safe).
 */
export function originFront(raw: string | string[] | undefined): string | undefined {
  return typeof raw === 'string' && /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(raw) ? raw : undefined;
}
