/**
 * GET /search/:topic page by page (services/shared/src/search-page.ts): the pages of a topic through
 * both fronts and every catalog pod, a walk with a small limit while books are bought, repriced and
 * restocked through the API and new books are added to the topic in the database (no book twice, none
 * missed, pages in id order), the cache per page, and every bad limit and cursor refused with 400,
 * by the fronts and by the catalog pods themselves, changing nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, snapshot, startTestStack, type TestStack } from './harness.js';
import { encodeCursor } from '../../services/shared/src/search-page.js';

interface Page {
  topic: string;
  books: Array<{ id: number; title: string }>;
  next: string | null;
}

const TOPIC = 'paging under writes';
const PATH = `/search/${encodeURIComponent(TOPIC)}`;
/** The books of TOPIC before any walk: ids 2000, 2003, ... (room for books added between them). */
const INITIAL = Array.from({ length: 60 }, (_, i) => 2000 + 3 * i);

describe('search pages', () => {
  let t: TestStack;
  let admin: Record<string, string>;

  before(async () => {
    t = await startTestStack();
    admin = bearer(t.stack.adminToken);
    await insertBooks(INITIAL);
  });
  after(async () => t?.stop());

  /** Adds books to TOPIC as an operator's SQL would, applied on the standby before it returns. */
  async function insertBooks(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    const client = await t.db.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL synchronous_commit = remote_apply');
      await client.query(
        `INSERT INTO books (id, title, topic, price, stock)
           SELECT id, 'Book ' || id, $2, 10, 1000 FROM unnest($1::int[]) AS id`,
        [ids, 'Paging Under Writes'],
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }

  /** Every page of a walk through `path` on `front`, each page's limit from `limits` (cycled). */
  async function walk(
    front: string,
    path: string,
    limits: number[],
    opts: { noCache?: boolean; afterPage?: (n: number) => Promise<void> } = {},
  ): Promise<{ ids: number[]; pages: Page[]; cache: string[] }> {
    const pages: Page[] = [];
    const cache: string[] = [];
    let cursor: string | null = null;
    for (let n = 0; ; n++) {
      const limit = limits[n % limits.length]!;
      const query: string = `?limit=${limit}` + (cursor === null ? '' : `&cursor=${cursor}`);
      const res = await call<Page>(front, 'GET', path + query, {
        ...(opts.noCache ? { headers: { 'cache-control': 'no-cache' } } : {}),
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(res.body.books.length <= limit, `page ${n}: at most ${limit} books`);
      pages.push(res.body);
      cache.push(res.headers.get('x-cache') ?? '');
      if (res.body.next === null) break;
      assert.ok(res.body.books.length === limit, `page ${n}: a page with a next one is full`);
      cursor = res.body.next;
      await opts.afterPage?.(n);
      assert.ok(n < 1000, 'the walk ends');
    }
    return { ids: pages.flatMap((p) => p.books.map((b) => b.id)), pages, cache };
  }

  const increasing = (ids: number[]) => ids.every((id, i) => i === 0 || id > ids[i - 1]!);

  it('the first page without parameters is the answer it always was, plus next (null: the last page)', async () => {
    const res = await call<Page>(t.front(0), 'GET', '/search/distributed%20systems');
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.books.map((b) => b.id),
      [1, 2, 5],
    );
    assert.equal(res.body.next, null);
    assert.deepEqual(Object.keys(res.body), ['topic', 'books', 'next']);
  });

  it('limit=2 pages through a topic: each cursor continues where its page ended, on any front and any spelling', async () => {
    const first = await call<Page>(t.front(0), 'GET', '/search/distributed%20systems?limit=2');
    assert.deepEqual(
      first.body.books.map((b) => b.id),
      [1, 2],
    );
    assert.equal(typeof first.body.next, 'string');
    // The cursor belongs to the topic, not to the front that made it or to how the topic was spelt.
    const second = await call<Page>(
      t.front(1),
      'GET',
      `/search/Distributed-Systems?limit=2&cursor=${first.body.next}`,
    );
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, {
      topic: 'distributed systems',
      books: [{ id: 5, title: 'How to finish Project 3 on time' }],
      next: null,
    });
    const school = await walk(t.front(0), '/search/undergraduate%20school', [1]);
    assert.deepEqual(school.ids, [3, 4, 6, 7]);
    assert.equal(school.pages.length, 4, 'a full last page says next: null itself, no empty page after it');
  });

  it('pages are cached by topic, cursor and limit, never one for another', async () => {
    const path = '/search/undergraduate%20school';
    const a = await call<Page>(t.front(0), 'GET', `${path}?limit=3`);
    const b = await call<Page>(t.front(0), 'GET', `${path}?limit=3`);
    assert.equal(b.headers.get('x-cache'), 'hit');
    assert.deepEqual(b.body, a.body);
    const other = await call<Page>(t.front(0), 'GET', `${path}?limit=2`);
    assert.equal(other.headers.get('x-cache'), 'miss', 'another size is another page');
    assert.deepEqual(
      other.body.books.map((x) => x.id),
      [3, 4],
    );
    const next = await call<Page>(t.front(0), 'GET', `${path}?limit=3&cursor=${a.body.next}`);
    assert.equal(next.headers.get('x-cache'), 'miss', 'another position is another page');
    assert.deepEqual(
      next.body.books.map((x) => x.id),
      [7],
    );
    // The default size is a size: no limit and limit=20 are one page.
    await call(t.front(0), 'GET', path);
    assert.equal((await call(t.front(0), 'GET', `${path}?limit=20`)).headers.get('x-cache'), 'hit');
    // A price change invalidates the book, not the pages that list it (they hold no price).
    const patched = await call(t.front(0), 'PATCH', '/books/3', { headers: admin, body: { price: 51 } });
    assert.equal(patched.status, 200);
    assert.equal((await call(t.front(0), 'GET', `${path}?limit=3`)).headers.get('x-cache'), 'hit');
  });

  it('a walk with a small limit while books are bought, repriced, restocked and added: every book once, in order', async () => {
    let writing = true;
    const apiWrites = { ok: 0, failed: 0 };
    const added: number[] = [];
    // Through the API, on the topic's books: none of it may move a book between pages.
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const id = INITIAL[(i * 7) % INITIAL.length]!;
        const front = t.front(i % 2);
        const res =
          i % 3 === 0
            ? await call(front, 'POST', `/purchase/${id}`)
            : i % 3 === 1
              ? await call(front, 'PATCH', `/books/${id}`, { headers: admin, body: { price: 10 + (i % 50) } })
              : await call(front, 'POST', `/books/${id}/restock`, { headers: admin, body: { quantity: 1 } });
        if (res.status === 200) apiWrites.ok++;
        else apiWrites.failed++;
      }
    })();
    // In the database: books between the initial ones (2001, 2004, ...) while the walks go on.
    const inserter = (async () => {
      for (let i = 0; writing && i < INITIAL.length; i++) {
        const id = INITIAL[i]! + 1;
        await insertBooks([id]);
        added.push(id);
      }
    })();
    // Books at the end of the topic, added once the walk has read its first page: ahead of its cursor,
    // so it must reach them.
    const ahead = [5000, 5001, 5002, 5003, 5004];
    try {
      const [fresh, cached] = await Promise.all([
        // Front 0 skips the cache: every page from a catalog pod, the primary or the standby in turn.
        walk(t.front(0), PATH, [7, 3, 11, 1], {
          noCache: true,
          afterPage: async (n) => {
            if (n === 0) await insertBooks(ahead);
          },
        }),
        // Front 1 through its cache.
        walk(t.front(1), PATH, [5]),
      ]);
      writing = false;
      await Promise.all([writer, inserter]);
      const all = new Set([...INITIAL, ...added, ...ahead]);
      for (const [name, w] of [
        ['uncached', fresh],
        ['cached', cached],
      ] as const) {
        assert.ok(increasing(w.ids), `${name}: ids strictly increase (no book twice): ${w.ids.join(',')}`);
        const missing = INITIAL.filter((id) => !w.ids.includes(id));
        assert.deepEqual(missing, [], `${name}: no book of the topic missed`);
        for (const id of w.ids) assert.ok(all.has(id), `${name}: ${id} is a book of the topic`);
        for (const p of w.pages) assert.equal(p.topic, TOPIC);
      }
      for (const id of ahead)
        assert.ok(fresh.ids.includes(id), `book ${id}, added ahead of the walk, is on it`);
      assert.ok(apiWrites.ok > 0, `writes went through during the walk (${JSON.stringify(apiWrites)})`);
      assert.equal(apiWrites.failed, 0, 'no write failed');
      // Once nothing is written, a walk through the cache is still every book once.
      const again = await walk(t.front(1), PATH, [5]);
      assert.ok(increasing(again.ids));
      assert.deepEqual(
        INITIAL.filter((id) => !again.ids.includes(id)),
        [],
      );
      assert.ok(
        again.cache.some((c) => c === 'hit'),
        `the second walk through front 1 hits its cache (${again.cache.join(',')})`,
      );
      const uncached = await walk(t.front(0), PATH, [100], { noCache: true });
      assert.deepEqual(
        uncached.ids,
        [...all].sort((a, b) => a - b),
        'once the writes are over, every book',
      );
    } finally {
      writing = false;
      await Promise.allSettled([writer, inserter]);
    }
  });

  it('an index on (lower(topic), id) serves a page, in order, however deep', async () => {
    const client = await t.db.connect();
    try {
      await client.query('ANALYZE books');
      await client.query('BEGIN');
      // A few hundred books make a full scan (sequential, or a bitmap and a sort) cheapest: ask what the
      // planner does when it is not, as at a million books.
      await client.query('SET LOCAL enable_seqscan = off');
      await client.query('SET LOCAL enable_bitmapscan = off');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT id, title FROM books WHERE lower(topic) = $1 AND id > $2 ORDER BY id LIMIT $3`,
        [TOPIC, 2050, 8],
      );
      const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      assert.match(text, /Index Scan using books_topic_id_idx/, text);
      assert.match(text, /Index Cond: \(\(lower\(topic\) = .*\) AND \(id > .*\)\)/, text);
      assert.doesNotMatch(text, /Sort/, `no sort: the index is in order\n${text}`);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('a bad limit or cursor, another topic, or another parameter is 400 with its code, on the fronts and the catalog pods, and changes nothing', async () => {
    const cursor = encodeCursor('distributed systems', 2);
    const cases: Array<[string, string]> = [
      ['?limit=0', 'invalid_limit'],
      ['?limit=101', 'invalid_limit'],
      ['?limit=-1', 'invalid_limit'],
      ['?limit=2.5', 'invalid_limit'],
      ['?limit=abc', 'invalid_limit'],
      ['?limit=', 'invalid_limit'],
      ['?limit=2&limit=3', 'invalid_limit'],
      ['?cursor=', 'invalid_cursor'],
      ['?cursor=not-a-cursor', 'invalid_cursor'],
      [`?cursor=${cursor}x`, 'invalid_cursor'],
      [`?cursor=${'A'.repeat(300)}`, 'invalid_cursor'],
      [`?cursor=${cursor}&cursor=${cursor}`, 'invalid_cursor'],
      [`?cursor=${encodeCursor('undergraduate school', 2)}`, 'cursor_topic_mismatch'],
      ['?page=2', 'unknown_parameter'],
      ['?limit=2&offset=2', 'unknown_parameter'],
    ];
    const before = await snapshot(t.db);
    const targets = [
      t.front(0),
      t.front(1),
      ...t.stack.all.filter((p) => p.name.startsWith('catalog-')).map((p) => p.url),
    ];
    for (const base of targets) {
      for (const [query, code] of cases) {
        const res = await call<{ error: { code: string; message: string } }>(
          base,
          'GET',
          `/search/distributed%20systems${query}`,
        );
        assert.equal(res.status, 400, `${base} ${query}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, code, `${base} ${query}`);
        assert.equal(typeof res.body.error.message, 'string');
      }
    }
    assert.deepEqual(await snapshot(t.db), before);
  });
});
