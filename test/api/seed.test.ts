/**
 * A big catalogue on demand (services/catalog/src/seed.ts) against real PostgreSQL: a store started
 * with 20,000 books (what `npm start -- --books 20000` does), the same books on two fresh databases
 * (one seeded at once, one topped up in small batches), every row the generator's (bookAt), the lab's
 * seven untouched, the topics skewed, prices and stock valid; seeding again does nothing, a table
 * holding books the seeder did not make is refused (and by the CLI the chart's Job runs, exit 65);
 * and one topic paged through a front returns every one of its books.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { call, startTestStack, type TestStack } from './harness.js';
import type { Book } from '../../services/catalog/src/books.js';
import { bookAt, SeedRefused, seedBooks, TOPICS } from '../../services/catalog/src/seed.js';
import { migrate } from '../../services/shared/src/db/migrations.js';
import { Database } from '../../services/shared/src/db/database.js';
import { createLogger } from '../../services/shared/src/logger.js';

const BOOKS = 20_000;
const SEED_MAIN = fileURLToPath(new URL('../../services/catalog/src/seed-main.js', import.meta.url));
/** The lab's seven, as migration 2 makes them. */
const LAB = [
  [1, 'How to get a good grade in DOS in 40 minutes a day', 'distributed systems', 30],
  [2, 'RPCs for Noobs', 'distributed systems', 50],
  [3, 'Xen and the Art of Surviving Undergraduate School', 'undergraduate school', 50],
  [4, 'Cooking for the Impatient Undergrad', 'undergraduate school', 50],
  [5, 'How to finish Project 3 on time', 'distributed systems', 130],
  [6, 'Why theory classes are so hard', 'undergraduate school', 20],
  [7, 'Spring in the Pioneer Valley', 'undergraduate school', 150],
].map(([id, title, topic, price]) => ({ id, title, topic, price, stock: 100, version: 1 }));

/** A row of books, as the catalog reads it. */
type Row = Book;

async function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** An md5 of every book, in id order: equal sums, equal tables. */
async function checksum(url: string): Promise<string> {
  const rows = await query<{ sum: string; n: string }>(
    url,
    `SELECT md5(string_agg(concat_ws('|', id, title, topic, price, stock, version), E'\\n' ORDER BY id)) AS sum,
            count(*) AS n FROM books`,
  );
  return `${rows[0]!.n}:${rows[0]!.sum}`;
}

/** The seed CLI (the chart's Job): its exit code and what it printed. */
function seedCli(env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SEED_MAIN], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('seeding a big catalogue', () => {
  let t: TestStack;
  let primary: string;
  /** A fresh database on the same server, migrated as an origin would. */
  const fresh = async (name: string, migrated = true): Promise<string> => {
    await query(primary, `DROP DATABASE IF EXISTS ${name}`);
    await query(primary, `CREATE DATABASE ${name}`);
    const url = new URL(primary);
    url.pathname = `/${name}`;
    if (migrated) {
      const logger = createLogger({ name: 'seed-test', level: 'warn' });
      const db = new Database('primary', url.href, logger, { applicationName: 'seed-test' });
      await migrate(db, logger);
      await db.close();
    }
    return url.href;
  };

  before(async () => {
    t = await startTestStack({ books: BOOKS, fronts: 1, catalogReplicas: 1, orderReplicas: 0 });
    primary = t.stack.primaryUrl;
  });
  after(async () => t?.stop());

  it('the store started with the lab’s seven and 20,000 seeded books, ids 8 to 20,007', async () => {
    assert.equal(t.stack.seeded?.books, BOOKS);
    assert.equal(t.stack.seeded?.inserted, BOOKS);
    const [r] = await query<{ n: string; min: number; max: number }>(
      primary,
      'SELECT count(*) AS n, min(id) AS min, max(id) AS max FROM books',
    );
    assert.deepEqual({ ...r, n: Number(r?.n) }, { n: BOOKS + 7, min: 1, max: BOOKS + 7 });
    const lab = await query<Row>(
      primary,
      'SELECT id, title, topic, price, stock, version FROM books WHERE id <= 7 ORDER BY id',
    );
    assert.deepEqual(lab, LAB);
    const [seed] = await query(primary, 'SELECT generator, books FROM book_seed');
    assert.deepEqual(seed, { generator: 'bazar-seed-v1', books: BOOKS });
  });

  it('every seeded row is the generator’s book (bookAt), at the first version of the timeline', async () => {
    const [{ v }] = (await query<{ v: number }>(primary, 'SELECT bazar_next_version(0) AS v')) as [
      { v: number },
    ];
    const rows = await query<Row>(
      primary,
      'SELECT id, title, topic, price, stock, version FROM books WHERE id > 7 ORDER BY id',
    );
    assert.equal(rows.length, BOOKS);
    for (const row of rows) assert.deepEqual(row, { ...bookAt(row.id), version: v }, `book ${row.id}`);
  });

  it('prices have two decimals and stock is in bounds, by the database’s own arithmetic', async () => {
    const [bad] = await query<{ n: string }>(
      primary,
      `SELECT count(*) AS n FROM books WHERE id > 7 AND NOT (
         price BETWEEN 0 AND 1000000 AND price * 100 = trunc(price * 100) AND stock BETWEEN 0 AND 1000000)`,
    );
    assert.equal(Number(bad!.n), 0);
  });

  it('topics are skewed: the biggest holds about 1/6 of the books, ten times the tenth', async () => {
    const sizes = await query<{ topic: string; n: string }>(
      primary,
      'SELECT topic, count(*) AS n FROM books WHERE id > 7 GROUP BY topic ORDER BY count(*) DESC, topic',
    );
    const n = sizes.map((s) => Number(s.n));
    assert.ok(sizes.length >= 290, `${sizes.length} topics`);
    assert.ok(n[0]! / BOOKS > 0.14 && n[0]! / BOOKS < 0.18, `biggest topic ${n[0]}`);
    assert.ok(n[0]! / n[9]! > 6, `biggest ${n[0]}, tenth ${n[9]}`);
    assert.ok(n[n.length - 1]! < n[0]! / 100, `smallest ${n[n.length - 1]}`);
    for (const lab of ['distributed systems', 'undergraduate school']) {
      assert.ok(
        sizes.some((s) => s.topic === lab && Number(s.n) > 100),
        lab,
      );
    }
    assert.ok(sizes.every((s) => TOPICS.includes(s.topic)));
  });

  it('deterministic: two fresh databases, one seeded at once and one topped up in batches, hold the same books', async () => {
    const a = await fresh('seed_a');
    const b = await fresh('seed_b');
    assert.deepEqual(await seedBooks(a, BOOKS).then((r) => [r.books, r.inserted]), [BOOKS, BOOKS]);
    assert.equal((await seedBooks(b, 5_000, { batch: 1_234 })).inserted, 5_000);
    const topUp = await seedBooks(b, BOOKS, { batch: 3_000 });
    assert.deepEqual([topUp.books, topUp.inserted], [BOOKS, BOOKS - 5_000]);
    const sum = await checksum(primary);
    assert.equal(await checksum(a), sum);
    assert.equal(await checksum(b), sum);
  });

  it('idempotent: seeding as many or fewer again changes nothing', async () => {
    const before = await checksum(primary);
    for (const n of [BOOKS, 10, 0]) {
      const r = await seedBooks(primary, n);
      assert.deepEqual([r.books, r.inserted], [BOOKS, 0], `seeding ${n}`);
    }
    const cli = seedCli({ DATABASE_URL: primary, SEED_BOOKS: String(BOOKS) });
    assert.equal(cli.status, 0, cli.out);
    assert.equal(await checksum(primary), before);
  });

  it('refuses a table holding books it did not make, changing nothing (the CLI exits 65)', async () => {
    // Books added by SQL past the seeded ones.
    const a = await fresh('seed_c');
    await seedBooks(a, 100);
    await query(a, `INSERT INTO books (id, title, topic, price, stock) VALUES (500, 'Mine', 'mine', 1, 1)`);
    const before = await checksum(a);
    await assert.rejects(
      seedBooks(a, 1_000),
      (err: unknown) =>
        err instanceof SeedRefused &&
        /holds 1 book\(s\) the seeder did not make \(ids 500 to 500; the seeder made ids 8 to 107\)/.test(
          err.message,
        ),
    );
    const cli = seedCli({ DATABASE_URL: a, SEED_BOOKS: '1000' });
    assert.equal(cli.status, 65, cli.out);
    assert.match(cli.out, /seed refused: the books table holds 1 book\(s\) the seeder did not make/);
    assert.equal(await checksum(a), before);
    // A store whose own books took ids past the lab's seven, never seeded.
    const b = await fresh('seed_d');
    await query(b, `INSERT INTO books (id, title, topic, price, stock) VALUES (8, 'Mine', 'mine', 1, 1)`);
    await assert.rejects(seedBooks(b, 10), /the seeder made none/);
    assert.equal((await query(b, 'SELECT 1 FROM book_seed')).length, 0);
  });

  it('the CLI waits for the migrations (it applies none) and gives up with the reason', async () => {
    const url = await fresh('seed_e', false);
    const cli = seedCli({ DATABASE_URL: url, SEED_BOOKS: '10', SEED_SCHEMA_WAIT_MS: '300' });
    assert.equal(cli.status, 1, cli.out);
    assert.match(cli.out, /the schema was not ready within 300 ms: schema version 0 < \d+/);
    assert.equal((await query(url, `SELECT to_regclass('books') AS t`))[0]!.t, null);
    const bad = seedCli({ DATABASE_URL: url, SEED_BOOKS: '10000001' });
    assert.equal(bad.status, 78, bad.out);
    assert.match(bad.out, /SEED_BOOKS: must be <= 10000000/);
  });

  it('paging through a topic with ?limit=100 on the front returns each of its books once, in id order', async () => {
    const topic = 'distributed systems';
    const expected = (
      await query<{ id: number }>(primary, 'SELECT id FROM books WHERE lower(topic) = $1 ORDER BY id', [
        topic,
      ])
    ).map((r) => r.id);
    assert.ok(expected.length > 1_000, `${expected.length} books`);
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const r = await call<{ books: Array<{ id: number }>; next: string | null }>(
        t.front(),
        'GET',
        `/search/${encodeURIComponent(topic)}?limit=100${q}`,
      );
      assert.equal(r.status, 200);
      seen.push(...r.body.books.map((b) => b.id));
      cursor = r.body.next;
      pages++;
    } while (cursor !== null && pages < 1_000);
    assert.deepEqual(seen, expected);
    assert.equal(pages, Math.ceil(expected.length / 100));
  });
});
