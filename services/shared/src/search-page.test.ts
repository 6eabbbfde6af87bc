import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError, readConfig } from './config.js';
import { HttpError } from './errors.js';
import { MAX_BOOK_ID, normalizeTopic } from './validate.js';
import {
  decodeCursor,
  DEFAULT_SEARCH_PAGING,
  encodeCursor,
  MAX_CURSOR_LENGTH,
  parseSearchQuery,
  searchPagingFrom,
  searchQueryString,
  searchResult,
  searchSchema,
} from './search-page.js';

const rejects = (fn: () => unknown, status: number, code: string) =>
  assert.throws(
    fn,
    (err: unknown) => err instanceof HttpError && err.status === status && err.code === code,
    `expected ${status} ${code}`,
  );

const TOPIC = 'distributed systems';
const paging = { defaultLimit: 20, maxLimit: 100 };

describe('search pages: the cursor', () => {
  it('round-trips an id for its topic, and is short, opaque and URL-safe', () => {
    for (const id of [1, 2, 5, 1000, MAX_BOOK_ID]) {
      const cursor = encodeCursor(TOPIC, id);
      assert.match(cursor, /^[A-Za-z0-9_-]+$/);
      assert.ok(cursor.length <= 64, cursor);
      assert.ok(!cursor.includes(String(id)) || id < 10, 'the id is not written in clear');
      assert.equal(decodeCursor(cursor, TOPIC), id);
    }
    // Any topic and id: the long topics of the OpenAPI document included.
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 100 }).filter((t) => {
          try {
            normalizeTopic(t);
            return true;
          } catch {
            return false;
          }
        }),
        fc.integer({ min: 1, max: MAX_BOOK_ID }),
        (raw, id) => {
          const topic = normalizeTopic(raw);
          const cursor = encodeCursor(topic, id);
          assert.ok(cursor.length <= MAX_CURSOR_LENGTH);
          return decodeCursor(cursor, topic) === id;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a cursor of another topic is 400 cursor_topic_mismatch; spellings of one topic share cursors', () => {
    const cursor = encodeCursor(TOPIC, 2);
    rejects(() => decodeCursor(cursor, 'undergraduate school'), 400, 'cursor_topic_mismatch');
    rejects(() => decodeCursor(cursor, 'distributed  systems'), 400, 'cursor_topic_mismatch');
    assert.equal(decodeCursor(cursor, normalizeTopic('Distributed-Systems')), 2);
  });

  it('anything but a cursor this store made, byte for byte, is 400 invalid_cursor', () => {
    const good = encodeCursor(TOPIC, 7);
    const json = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const tag = (JSON.parse(Buffer.from(good, 'base64url').toString()) as { t: string }).t;
    const bad = [
      '',
      'x',
      '%%%',
      'a b',
      good + '=',
      good + 'A',
      good.slice(0, -1),
      good.slice(0, 10) + '+' + good.slice(11),
      good.toLowerCase(),
      'A'.repeat(MAX_CURSOR_LENGTH + 1),
      Buffer.from(JSON.stringify({ v: 1, t: tag, a: 7 })).toString('base64'), // padded/standard alphabet
      json({ v: 2, t: tag, a: 7 }),
      json({ v: '1', t: tag, a: 7 }),
      json({ t: tag, v: 1, a: 7 }), // another key order
      json({ v: 1, t: tag, a: 7, x: 1 }),
      json({ v: 1, t: tag }),
      json({ v: 1, t: tag, a: 0 }),
      json({ v: 1, t: tag, a: -3 }),
      json({ v: 1, t: tag, a: 1.5 }),
      json({ v: 1, t: tag, a: '7' }),
      json({ v: 1, t: tag, a: MAX_BOOK_ID + 1 }),
      json({ v: 1, t: tag, a: 1e300 }),
      json({ v: 1, t: tag + 'A', a: 7 }),
      json({ v: 1, t: 'short', a: 7 }),
      json({ v: 1, t: null, a: 7 }),
      json([1, tag, 7]),
      json(null),
      json('7'),
      json(7),
      Buffer.from('{"v":1,').toString('base64url'),
      Buffer.from([0xff, 0xfe, 0x00]).toString('base64url'),
      json({ __proto__: { a: 7 }, v: 1, t: tag }),
    ];
    for (const raw of bad) rejects(() => decodeCursor(raw, TOPIC), 400, 'invalid_cursor');
    // Random strings in the cursor's own alphabet are refused, never thrown as anything else.
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,200}$/), (raw) => {
        try {
          decodeCursor(raw, TOPIC);
          return raw === encodeCursor(TOPIC, decodeCursor(raw, TOPIC));
        } catch (err) {
          return err instanceof HttpError && err.status === 400;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('search pages: the query string', () => {
  it('defaults to the first page of the default size', () => {
    assert.deepEqual(parseSearchQuery('', TOPIC, paging), { limit: 20, after: 0 });
    assert.deepEqual(parseSearchQuery('limit=1', TOPIC, paging), { limit: 1, after: 0 });
    assert.deepEqual(parseSearchQuery('limit=100', TOPIC, paging), { limit: 100, after: 0 });
    const cursor = encodeCursor(TOPIC, 5);
    assert.deepEqual(parseSearchQuery(`cursor=${cursor}`, TOPIC, paging), { limit: 20, after: 5 });
    assert.deepEqual(parseSearchQuery(`cursor=${cursor}&limit=3`, TOPIC, paging), { limit: 3, after: 5 });
    // Percent-encoding of the same characters is the same value.
    assert.deepEqual(parseSearchQuery('limit=%33', TOPIC, paging), { limit: 3, after: 0 });
  });

  it('a limit that is not an integer in [1, max], given twice, or empty is 400 invalid_limit', () => {
    for (const q of [
      'limit=0',
      'limit=101',
      'limit=-1',
      'limit=+1',
      'limit=01',
      'limit=1.0',
      'limit=1e1',
      'limit=0x10',
      'limit= 1',
      'limit=1%20',
      'limit=',
      'limit',
      'limit=abc',
      'limit=NaN',
      'limit=Infinity',
      'limit=99999999999999999999',
      'limit=2&limit=2',
    ]) {
      rejects(() => parseSearchQuery(q, TOPIC, paging), 400, 'invalid_limit');
    }
  });

  it('a cursor that is empty, given twice or malformed is 400 invalid_cursor', () => {
    const cursor = encodeCursor(TOPIC, 5);
    for (const q of ['cursor=', 'cursor', `cursor=${cursor}&cursor=${cursor}`, 'cursor=null', 'cursor=%00']) {
      rejects(() => parseSearchQuery(q, TOPIC, paging), 400, 'invalid_cursor');
    }
    rejects(
      () => parseSearchQuery(`cursor=${encodeCursor('other', 5)}`, TOPIC, paging),
      400,
      'cursor_topic_mismatch',
    );
  });

  it('any other parameter is 400 unknown_parameter, before the values are looked at', () => {
    for (const q of [
      'page=2',
      'limit=2&offset=4',
      'Limit=2',
      'cursor=x&fields=id',
      '&',
      '=1',
      'limit=0&x=1',
    ]) {
      rejects(() => parseSearchQuery(q, TOPIC, paging), 400, 'unknown_parameter');
    }
  });

  it('the canonical query the front sends the catalog parses back to the same page', () => {
    for (const page of [
      { limit: 20, after: 0 },
      { limit: 1, after: 1 },
      { limit: 100, after: MAX_BOOK_ID },
    ]) {
      assert.deepEqual(parseSearchQuery(searchQueryString(TOPIC, page), TOPIC, paging), page);
    }
  });
});

describe('search pages: the answer', () => {
  const rows = (...ids: number[]) => ids.map((id) => ({ id, title: `t${id}` }));

  it('a page of limit + 1 rows has a next cursor naming its last book; a shorter one is the last', () => {
    const page = { limit: 2, after: 0 };
    const full = searchResult(TOPIC, page, rows(1, 2, 5));
    assert.deepEqual(full.books, rows(1, 2));
    assert.equal(decodeCursor(full.next!, TOPIC), 2);
    assert.deepEqual(searchResult(TOPIC, page, rows(1, 2)), { topic: TOPIC, books: rows(1, 2), next: null });
    assert.deepEqual(searchResult(TOPIC, page, []), { topic: TOPIC, books: [], next: null });
    // Keys in this order: topic and books first, as before pages existed.
    assert.deepEqual(Object.keys(full), ['topic', 'books', 'next']);
  });
});

describe('search pages: the config', () => {
  it('defaults, bounds, and a default page larger than the maximum refused at start', () => {
    assert.deepEqual(searchPagingFrom(readConfig(searchSchema, {})), DEFAULT_SEARCH_PAGING);
    assert.deepEqual(
      searchPagingFrom(readConfig(searchSchema, { SEARCH_PAGE_SIZE: '5', SEARCH_MAX_PAGE_SIZE: '5' })),
      { defaultLimit: 5, maxLimit: 5 },
    );
    assert.throws(
      () =>
        searchPagingFrom(readConfig(searchSchema, { SEARCH_PAGE_SIZE: '50', SEARCH_MAX_PAGE_SIZE: '10' })),
      (err: unknown) => err instanceof ConfigError && err.variable === 'SEARCH_PAGE_SIZE',
    );
    for (const [variable, value] of [
      ['SEARCH_PAGE_SIZE', '0'],
      ['SEARCH_MAX_PAGE_SIZE', '1001'],
      ['SEARCH_MAX_PAGE_SIZE', 'many'],
    ] as const) {
      assert.throws(
        () => readConfig(searchSchema, { [variable]: value }),
        (err: unknown) => err instanceof ConfigError && err.variable === variable,
      );
    }
  });
});
