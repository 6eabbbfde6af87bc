import type { FastPath } from '../../shared/src/server.js';
import { digitsAfter, offKoa } from '../../shared/src/server.js';
import { errorFromResponse } from '../../shared/src/http-client.js';
import { HttpError, notFound } from '../../shared/src/errors.js';
import { requireObject } from '../../shared/src/body.js';
import { parseBookId, parseMinVersion } from '../../shared/src/validate.js';
import { sleep } from '../../shared/src/main-helpers.js';
import { DATABASE_HEADER } from '../../shared/src/db/database.js';
import { bookVersions, findBook, findBookOnPrimary, findBookOnStandby, standbyStreaming } from './books.js';
import type { CatalogDeps } from './app.js';

/** One book as this catalog pod answers it: its JSON bytes, and who produced them if not this pod. */
export interface BookAnswer {
  body: Buffer;
  /** The origin's pod name when a replica had to ask it. */
  servedBy?: string;
  /**
   * Read on the primary with no write of the book in flight: the book's current version, however old
   * against the reader's X-Min-Version (sent as `X-Bazar-Settled: 1`).
   */
  settled?: boolean;
  /** The timeline of the primary the origin reads (TIMELINE_HEADER), once the origin knows it. */
  timeline?: number;
  /** The server that answered (DATABASE_HEADER): this pod's pool, or the origin's when it was asked. */
  database?: string;
}

/** The header by which a catalog pod says its answer is the primary's settled truth (see BookAnswer). */
export const SETTLED_HEADER = 'X-Bazar-Settled';
/**
 * The header by which the origin gives its primary's PostgreSQL timeline: a front that sees it rise has
 * seen a failover, which may have lost writes it fenced on (docs/guarantees.md, "Failover").
 */
export const TIMELINE_HEADER = 'X-Bazar-Timeline';

const BOOKS_PREFIX = '/books/';
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Reads one book (404 when there is none). A replica serves from its standby when the standby has the
 * version the reader needs; it waits briefly for replay, then asks the origin (read-your-writes in
 * `session` mode). A standby that is down also sends the read to the origin.
 */
export async function readBook(deps: CatalogDeps, id: number, minVersion: number): Promise<BookAnswer> {
  if (!deps.origin) {
    const answer: BookAnswer = {
      ...fromRow(id, await readOnPrimary(deps, id)),
      settled: true,
      database: deps.reads.label,
    };
    const timeline = deps.writer?.primaryIdentity?.facts?.timeline;
    if (timeline !== undefined) answer.timeline = timeline;
    return answer;
  }
  const deadline = Date.now() + deps.replicaWaitMs;
  // No version to wait for: the front has heard of no write to this book (it started after the last
  // one). A standby that holds WAL it has not applied yet is then known to be behind: wait for it too,
  // or a front started during a replay stall would serve a superseded version indefinitely.
  const unfenced = minVersion === 0 && deps.policy.current.consistencyMode !== 'eventual';
  try {
    for (;;) {
      const { book, caughtUp } = unfenced
        ? await findBookOnStandby(deps.reads, id)
        : { book: await findBook(deps.reads, id), caughtUp: true };
      if (caughtUp && (!book || book.version >= minVersion))
        return { ...fromRow(id, book), database: deps.reads.label };
      if (Date.now() >= deadline) break;
      await sleep(2);
    }
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 503)) throw err;
    deps.logger.warn({ id }, 'standby unavailable; reading from the origin');
  }
  const res = await deps.origin.request({
    method: 'GET',
    path: `/books/${id}`,
    ...(minVersion > 0 ? { headers: { 'x-min-version': String(minVersion) } } : {}),
    retry: 'idempotent',
  });
  if (res.status !== 200) throw errorFromResponse(res);
  const servedBy = res.headers['x-served-by'];
  const database = res.headers[DATABASE_HEADER.toLowerCase()];
  const timeline = Number(res.headers[TIMELINE_HEADER.toLowerCase()]);
  return {
    body: Buffer.from(res.raw),
    ...(typeof servedBy === 'string' ? { servedBy } : {}),
    ...(typeof database === 'string' ? { database } : {}),
    ...(res.headers[SETTLED_HEADER.toLowerCase()] === '1' ? { settled: true } : {}),
    ...(Number.isSafeInteger(timeline) && timeline > 0 ? { timeline } : {}),
  };
}

/**
 * The origin's read. In `strict` mode a row whose writer is still in flight is not answered (its new
 * version may already show on the standby): the read polls until the writer is done, then answers
 * with what it committed, for at most REPLICA_WAIT_MS; then, while a standby streams (one that may
 * already show the new version), 503 `write_in_flight`, and the front asks another catalog pod; with
 * no standby streaming, the row as it is. The origin answers what the primary has even when it is older than the
 * reader's X-Min-Version (no write of it is in flight: that is the truth); the front judges it.
 */
async function readOnPrimary(deps: CatalogDeps, id: number): Promise<object | undefined> {
  if (deps.policy.current.consistencyMode !== 'strict') return findBook(deps.reads, id);
  const deadline = Date.now() + deps.replicaWaitMs;
  for (;;) {
    const { book, writing } = await findBookOnPrimary(deps.reads, id);
    if (!writing) return book;
    if (Date.now() >= deadline) {
      // No standby streams (it is gone, or not back yet): none can show the new version, so the old
      // row is still the truth for every reader, and writes waiting for a confirmation must not make
      // reads fail. (Not covered: a standby that replayed the commit, served it and vanished before
      // confirming, docs/guarantees.md.)
      if (!(await standbyStreaming(deps.reads))) return book;
      throw new HttpError(
        503,
        'write_in_flight',
        `a write of book ${id} is waiting for the standby; ask another catalog pod`,
      );
    }
    await sleep(1);
  }
}

/** The headers of a GET /books/:id answer (the fast path and the Koa route alike). */
export function bookHeaders(book: BookAnswer): string[] {
  return [
    ...(book.servedBy ? ['X-Served-By', book.servedBy] : []),
    ...(book.database ? [DATABASE_HEADER, book.database] : []),
    ...(book.settled ? [SETTLED_HEADER, '1'] : []),
    ...(book.timeline !== undefined ? [TIMELINE_HEADER, String(book.timeline)] : []),
    'Content-Type',
    JSON_TYPE,
  ];
}

function fromRow(id: number, book: object | undefined): BookAnswer {
  if (!book) throw notFound('book_not_found', `no book with id ${id}`);
  return { body: Buffer.from(JSON.stringify(book)) };
}

/**
 * GET /books/:id, every uncached read of every front, answered before Koa with the same status,
 * headers, body and metrics as the Koa route; HEAD, a query string or an id that is not digits go to Koa.
 */
export function bookFastPath(deps: CatalogDeps): FastPath {
  const answer = offKoa(deps);
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const rest = digitsAfter(req.url, BOOKS_PREFIX);
    if (rest === undefined) return false;
    req.resume();
    answer(req, res, '/books/:id', async () => {
      const header = req.headers['x-min-version'];
      const minVersion = parseMinVersion(Array.isArray(header) ? header.join(',') : header);
      const book = await readBook(deps, parseBookId(rest), minVersion);
      return {
        status: 200,
        headers: bookHeaders(book),
        body: book.body,
      };
    });
    return true;
  };
}

/** The most book ids one versions request may ask about (a front sends its cached ids in chunks). */
export const MAX_VERSION_IDS = 1000;

/**
 * POST /internal/versions `{"ids":[…]}` → `{"versions":{"<id>":<version>,…}}` (unknown ids left out):
 * what a front compares its cached entries with (CacheReconciler), so that an invalidation lost with
 * the writer that should have pushed it cannot leave the front stale for longer than one round. Read
 * where this pod reads; a replica whose standby is down asks the origin.
 */
export async function versionsAnswer(deps: CatalogDeps, body: unknown): Promise<Record<string, number>> {
  const ids = parseVersionIds(body);
  if (!deps.origin) return bookVersions(deps.reads, ids);
  try {
    return await bookVersions(deps.reads, ids);
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 503)) throw err;
  }
  const res = await deps.origin.request({
    method: 'POST',
    path: '/internal/versions',
    headers: { authorization: `Bearer ${deps.internalToken()}` },
    json: { ids },
    retry: 'idempotent',
  });
  if (res.status !== 200) throw errorFromResponse(res);
  return (res.body as { versions: Record<string, number> }).versions;
}

function parseVersionIds(body: unknown): number[] {
  const object = requireObject(body, ['ids']);
  const ids = object.ids;
  if (
    !Array.isArray(ids) ||
    ids.length === 0 ||
    ids.length > MAX_VERSION_IDS ||
    !ids.every((id) => Number.isSafeInteger(id) && (id as number) > 0)
  ) {
    throw new HttpError(
      400,
      'invalid_body',
      `ids must be an array of 1-${MAX_VERSION_IDS} positive integers`,
    );
  }
  return ids as number[];
}
