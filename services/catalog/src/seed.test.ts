/**
 * The seed generator without a database: bookAt (the JavaScript twin of the server-side statement)
 * is deterministic, stays in bounds, and skews its topics. test/api/seed.test.ts holds the server's
 * rows to bookAt, seeds through a real store, and times nothing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeTopic, parsePrice } from '../../shared/src/validate.js';
import {
  bookAt,
  checkBookCount,
  fieldHash,
  FIRST_SEEDED_ID,
  MAX_SEED_BOOKS,
  PRICE_MAX,
  PRICE_MIN,
  SEED_STATEMENT,
  seedParams,
  STOCK_MAX,
  STOCK_MIN,
  TOPIC_THRESHOLDS,
  TOPICS,
} from './seed.js';

const SAMPLE = 200_000;
const ids = (n: number, from = FIRST_SEEDED_ID): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('seed generator', () => {
  it("the hash is PostgreSQL's hashint8extended (values read from PostgreSQL 18)", () => {
    // SELECT i, hashint8extended(i, (x'62617a61'::bigint << 32) | 1) & 4294967295 FROM generate_series(8, 12) i
    assert.deepEqual(
      [8, 9, 10, 11, 12].map((i) => fieldHash(i, 1)),
      [2144604065, 187839713, 3144645466, 3810303048, 4269088888],
    );
  });

  it('is deterministic: the same id gives the same book, and these books stay what they are', () => {
    for (const id of ids(1000)) assert.deepEqual(bookAt(id), bookAt(id));
    // A change here changes every seeded store: give the generator a new name (GENERATOR) with it.
    assert.deepEqual(bookAt(8), {
      id: 8,
      title: '7 Tiny Sketches of Compilers',
      topic: 'compilers',
      price: 5.99,
      stock: 485,
    });
    assert.deepEqual(bookAt(9), {
      id: 9,
      title: 'The Restless Guide to Programming',
      topic: 'programming',
      price: 78.99,
      stock: 493,
    });
  });

  it('ids are 8 to 10,000,007: the lab keeps 1-7', () => {
    assert.throws(() => bookAt(7), RangeError);
    assert.throws(() => bookAt(MAX_SEED_BOOKS + 8), RangeError);
    assert.throws(() => bookAt(8.5), RangeError);
    assert.equal(bookAt(MAX_SEED_BOOKS + 7).id, MAX_SEED_BOOKS + 7);
  });

  it('every price is one the API accepts (two decimals) and in bounds; every stock in bounds', () => {
    const endings = new Set<number>();
    for (const id of ids(SAMPLE)) {
      const b = bookAt(id);
      assert.equal(parsePrice(b.price), b.price, `book ${id}: price ${b.price}`);
      assert.ok(b.price >= PRICE_MIN && b.price <= PRICE_MAX, `book ${id}: price ${b.price}`);
      assert.ok(Number.isInteger(b.stock) && b.stock >= STOCK_MIN && b.stock <= STOCK_MAX, `book ${id}`);
      endings.add(Math.round(b.price * 100) % 100);
    }
    assert.deepEqual(
      [...endings].sort((a, b) => a - b),
      [0, 50, 95, 99],
    );
  });

  it('titles are filled in, and topics are valid, normalised search topics', () => {
    const titles = new Set<string>();
    for (const id of ids(20_000)) {
      const b = bookAt(id);
      assert.match(b.title, /^[A-Z0-9][A-Za-z0-9 :,']+$/, `book ${id}: ${b.title}`);
      titles.add(b.title);
    }
    assert.ok(titles.size > 13_000, `${titles.size} distinct titles of 20,000`); // 14,172: a few repeat, as in a shop
    assert.equal(new Set(TOPICS).size, 300);
    for (const t of TOPICS) assert.equal(normalizeTopic(t), t);
    assert.ok(TOPICS.includes('distributed systems') && TOPICS.includes('undergraduate school'));
  });

  it('topic sizes are Zipf-like: the k-th topic about 1/k of the first, every topic present', () => {
    assert.equal(TOPIC_THRESHOLDS.length, TOPICS.length - 1);
    for (let k = 1; k < TOPIC_THRESHOLDS.length; k++) {
      assert.ok((TOPIC_THRESHOLDS[k] as number) > (TOPIC_THRESHOLDS[k - 1] as number));
    }
    const counts = new Map<string, number>();
    for (const id of ids(SAMPLE)) {
      const t = bookAt(id).topic;
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    assert.equal(counts.size, TOPICS.length, 'every topic has books');
    const share = (k: number): number => (counts.get(TOPICS[k] as string) ?? 0) / SAMPLE;
    // 1 / H(300) = 15.9 % for the first topic; the 10th about a tenth of that, the last about 1/300.
    assert.ok(Math.abs(share(0) - 0.159) < 0.005, `first topic ${share(0)}`);
    assert.ok(Math.abs(share(0) / share(9) - 10) < 1.5, `first / tenth ${share(0) / share(9)}`);
    assert.ok(share(299) > 0.0002 && share(299) < 0.001, `last topic ${share(299)}`);
  });

  it('the server statement takes its lists as parameters, ids from..to', () => {
    const params = seedParams(8, 20, 1);
    assert.deepEqual(params.slice(0, 3), [8, 20, 1]);
    assert.equal(params[3], TOPICS);
    assert.match(SEED_STATEMENT, /generate_series\(\$1::bigint, \$2::bigint\)/);
    assert.equal(
      Math.max(...[...SEED_STATEMENT.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))),
      params.length,
    );
  });

  it('a book count is a whole number from 0 to the maximum', () => {
    assert.equal(checkBookCount(0), 0);
    assert.equal(checkBookCount(MAX_SEED_BOOKS), MAX_SEED_BOOKS);
    for (const bad of [-1, 1.5, MAX_SEED_BOOKS + 1, Number.NaN]) {
      assert.throws(() => checkBookCount(bad), RangeError);
    }
  });
});
