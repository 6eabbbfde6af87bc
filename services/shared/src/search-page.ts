import { createHash } from 'node:crypto';
import { ConfigError, int } from './config.js';
import { badRequest } from './errors.js';
import { checkQuery, MAX_BOOK_ID } from './validate.js';

/**
 * Pages of `GET /search/:topic`: the query parameters the route declares, the page sizes, and the
 * opaque cursor. Shared by the front (which validates before it asks anything and keys its cache by
 * page) and the catalog (which reads the page and makes the next cursor).
 *
 * Keyset pagination by book id: a page is the first `limit` books of the topic with an id above the
 * cursor's, in id order, and the cursor of the next page names the last id of this one. Pages never
 * overlap (each starts strictly after the id the previous one ended on), and a book that is in the
 * topic for the whole walk is on exactly one page whatever is written meanwhile: a price change,
 * purchase or restock changes no id, title or topic, and a book added during the walk is on a later
 * page if its id is above the cursor of the page being read, else on none (it sorted before the walk's
 * position). No offset is ever counted, so a page costs the same at the millionth book as at the first.
 */

/** The query parameters of `GET /search/:topic` (every other name is 400 `unknown_parameter`). */
export const SEARCH_QUERY_PARAMS: readonly string[] = ['limit', 'cursor'];

/** The largest page size a deployment may configure (SEARCH_MAX_PAGE_SIZE). */
export const SEARCH_PAGE_SIZE_CEILING = 1000;
export const DEFAULT_SEARCH_PAGE_SIZE = 20;
export const DEFAULT_SEARCH_MAX_PAGE_SIZE = 100;

/** Longer than any cursor this store makes (about 50 characters), shorter than anything abusive. */
export const MAX_CURSOR_LENGTH = 200;
/** The cursor's format version; a cursor of another version is refused as invalid. */
const CURSOR_VERSION = 1;
/** Characters of the topic's digest a cursor carries: 72 bits, so two topics never share one. */
const TOPIC_TAG_LENGTH = 12;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The page sizes of a service, from its config (searchSchema). */
export interface SearchPaging {
  /** The page size when the request names none. */
  defaultLimit: number;
  /** The largest `limit` a request may ask for. */
  maxLimit: number;
}

export const DEFAULT_SEARCH_PAGING: SearchPaging = {
  defaultLimit: DEFAULT_SEARCH_PAGE_SIZE,
  maxLimit: DEFAULT_SEARCH_MAX_PAGE_SIZE,
};

/** The config of the services that serve search pages (the front and the catalog). */
export const searchSchema = {
  /** Books per search page when the request has no `limit`. */
  SEARCH_PAGE_SIZE: int({ default: DEFAULT_SEARCH_PAGE_SIZE, min: 1, max: SEARCH_PAGE_SIZE_CEILING }),
  /** The largest `limit` a search may ask for (more is 400 `invalid_limit`). */
  SEARCH_MAX_PAGE_SIZE: int({ default: DEFAULT_SEARCH_MAX_PAGE_SIZE, min: 1, max: SEARCH_PAGE_SIZE_CEILING }),
};

/** The paging of a service's config; a default page larger than the maximum is refused at start. */
export function searchPagingFrom(config: {
  SEARCH_PAGE_SIZE: number;
  SEARCH_MAX_PAGE_SIZE: number;
}): SearchPaging {
  if (config.SEARCH_PAGE_SIZE > config.SEARCH_MAX_PAGE_SIZE) {
    throw new ConfigError(
      'SEARCH_PAGE_SIZE',
      `must be <= SEARCH_MAX_PAGE_SIZE (${config.SEARCH_MAX_PAGE_SIZE}), got ${config.SEARCH_PAGE_SIZE}`,
    );
  }
  return { defaultLimit: config.SEARCH_PAGE_SIZE, maxLimit: config.SEARCH_MAX_PAGE_SIZE };
}

/** One page asked for: at most `limit` books with an id above `after` (0: the first page). */
export interface SearchPageRequest {
  limit: number;
  after: number;
}

/** A short digest of a normalised topic: binds a cursor to its topic without carrying the topic. */
function topicTag(topic: string): string {
  return createHash('sha256').update(topic).digest('base64url').slice(0, TOPIC_TAG_LENGTH);
}

/**
 * The cursor of the page after the one that ended on book `after`, for `topic` (normalised): the
 * base64url of a small versioned JSON object, `{"v":1,"t":<topic digest>,"a":<last id>}`. Opaque to
 * clients: the format may change with `v`, and only what this function made is accepted back.
 */
export function encodeCursor(topic: string, after: number): string {
  return Buffer.from(JSON.stringify({ v: CURSOR_VERSION, t: topicTag(topic), a: after })).toString(
    'base64url',
  );
}

const invalidCursor = (why: string) =>
  badRequest('invalid_cursor', `cursor is not one this store gave (${why}); start again without one`);

/**
 * The id a cursor for `topic` (normalised) continues after. Anything but a cursor encodeCursor made,
 * byte for byte, is 400 `invalid_cursor`; a cursor made for another topic is 400
 * `cursor_topic_mismatch` (topics that normalise alike, such as `Distributed-Systems` and
 * `distributed systems`, are one topic).
 */
export function decodeCursor(raw: string, topic: string): number {
  if (raw.length === 0) throw invalidCursor('empty');
  if (raw.length > MAX_CURSOR_LENGTH || !BASE64URL.test(raw)) throw invalidCursor('malformed');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor('malformed');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidCursor('malformed');
  }
  const { v, t, a } = parsed as Record<string, unknown>;
  if (v !== CURSOR_VERSION) throw invalidCursor('unknown version');
  if (
    typeof t !== 'string' ||
    t.length !== TOPIC_TAG_LENGTH ||
    !BASE64URL.test(t) ||
    typeof a !== 'number' ||
    !Number.isSafeInteger(a) ||
    a < 1 ||
    a > MAX_BOOK_ID
  ) {
    throw invalidCursor('malformed');
  }
  // Only the exact bytes this store makes: no other key order, extra keys, padding or stray bits.
  const canonical = Buffer.from(JSON.stringify({ v, t, a })).toString('base64url');
  if (canonical !== raw) throw invalidCursor('malformed');
  if (t !== topicTag(topic)) {
    throw badRequest(
      'cursor_topic_mismatch',
      'cursor belongs to another topic: page a topic with the cursors of its own pages',
    );
  }
  return a;
}

/**
 * `limit` as sent: a decimal integer in [1, maxLimit], no sign, no leading zero, no spaces. Absent:
 * the default page size.
 */
function parseLimit(raw: string | undefined, paging: SearchPaging): number {
  if (raw === undefined) return paging.defaultLimit;
  const value = /^[1-9][0-9]{0,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(value <= paging.maxLimit)) {
    throw badRequest('invalid_limit', `limit must be an integer between 1 and ${paging.maxLimit}`);
  }
  return value;
}

/**
 * The page a `GET /search/:topic` query string asks for, for `topic` (normalised): `limit` (default
 * and maximum from `paging`) and `cursor` (absent: the first page), each at most once. Unknown
 * parameters are 400 `unknown_parameter`, a bad limit 400 `invalid_limit`, a bad cursor 400
 * `invalid_cursor` or `cursor_topic_mismatch`.
 */
export function parseSearchQuery(
  querystring: string,
  topic: string,
  paging: SearchPaging,
): SearchPageRequest {
  checkQuery(querystring, SEARCH_QUERY_PARAMS);
  const params = new URLSearchParams(querystring);
  const one = (name: string, code: string): string | undefined => {
    const values = params.getAll(name);
    if (values.length > 1) throw badRequest(code, `${name} must be given at most once`);
    return values[0];
  };
  const limit = parseLimit(one('limit', 'invalid_limit'), paging);
  const cursor = one('cursor', 'invalid_cursor');
  return { limit, after: cursor === undefined ? 0 : decodeCursor(cursor, topic) };
}

/** The canonical query string of a page (what the front sends the catalog): `limit=N[&cursor=C]`. */
export function searchQueryString(topic: string, page: SearchPageRequest): string {
  return page.after > 0
    ? `limit=${page.limit}&cursor=${encodeCursor(topic, page.after)}`
    : `limit=${page.limit}`;
}

/** A search answer: the topic as searched, a page of its books by id, and the next page's cursor. */
export interface SearchResult<B extends { id: number }> {
  topic: string;
  books: B[];
  /** The cursor of the next page; null on the last page. */
  next: string | null;
}

/**
 * The answer of a page from the rows a keyset query returned: the caller fetched up to `limit + 1`
 * rows, so that a last page says so (`next: null`) without a request for an empty page after it.
 */
export function searchResult<B extends { id: number }>(
  topic: string,
  page: SearchPageRequest,
  rows: B[],
): SearchResult<B> {
  const books = rows.slice(0, page.limit);
  const more = rows.length > page.limit && books.length > 0;
  return { topic, books, next: more ? encodeCursor(topic, books[books.length - 1]!.id) : null };
}
