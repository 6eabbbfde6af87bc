import type { Database } from './database.js';
import type { Logger } from '../logger.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * How many versions of one book a timeline holds before its versions run into the next timeline's
 * (bazar_next_version, migration 4). A billion writes of one book between two failovers; versions stay
 * below 2^53 for 9 million timelines.
 */
export const VERSIONS_PER_TIMELINE = 1_000_000_000;

/** Versioned, append-only. Never edit a released migration: add the next one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'books and orders',
    sql: `
      CREATE TABLE books (
        id      integer PRIMARY KEY CHECK (id > 0),
        title   text    NOT NULL,
        topic   text    NOT NULL,
        price   numeric(12, 2) NOT NULL CHECK (price >= 0),
        stock   integer NOT NULL CHECK (stock >= 0),
        version bigint  NOT NULL DEFAULT 1 CHECK (version > 0)
      );
      CREATE INDEX books_topic_idx ON books (lower(topic));
      CREATE TABLE orders (
        id              uuid PRIMARY KEY,
        book_id         integer NOT NULL REFERENCES books (id),
        price           numeric(12, 2) NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        idempotency_key text UNIQUE,
        book_version    bigint NOT NULL,
        remaining_stock integer NOT NULL
      );
      CREATE INDEX orders_book_id_idx ON orders (book_id);
    `,
  },
  {
    version: 2,
    name: 'seed the lab books',
    sql: `
      INSERT INTO books (id, title, topic, price, stock) VALUES
        (1, 'How to get a good grade in DOS in 40 minutes a day', 'distributed systems', 30, 100),
        (2, 'RPCs for Noobs', 'distributed systems', 50, 100),
        (3, 'Xen and the Art of Surviving Undergraduate School', 'undergraduate school', 50, 100),
        (4, 'Cooking for the Impatient Undergrad', 'undergraduate school', 50, 100),
        (5, 'How to finish Project 3 on time', 'distributed systems', 130, 100),
        (6, 'Why theory classes are so hard', 'undergraduate school', 20, 100),
        (7, 'Spring in the Pioneer Valley', 'undergraduate school', 150, 100)
      ON CONFLICT (id) DO NOTHING;
    `,
  },
  {
    version: 3,
    name: 'restock idempotency keys',
    // One row per restock made under an Idempotency-Key (the front gives every restock one): the
    // key, what it asked for, and the book as that restock left it, returned again on a retry.
    sql: `
      CREATE TABLE restocks (
        idempotency_key text PRIMARY KEY,
        book_id         integer NOT NULL REFERENCES books (id),
        quantity        integer NOT NULL CHECK (quantity > 0),
        price           numeric(12, 2) NOT NULL,
        stock           integer NOT NULL,
        book_version    bigint NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 4,
    name: 'versions unique across failovers',
    // The version every write gives a book: one more than its current one, and at least the first
    // version of the primary's timeline, (timeline - 1) * VERSIONS_PER_TIMELINE + 1. A failover that
    // lost the last writes (asynchronous replication: session and eventual modes) promotes a server
    // whose rows still carry the versions before them; without the floor, the next write of such a
    // book would reuse a lost version's number for other contents. Every promotion starts a new
    // timeline, so versions written after it are above every version written before it. On timeline
    // 1 (no failover ever) the floor is 1: versions are 1, 2, 3, ... as they always were.
    sql: `
      CREATE FUNCTION bazar_next_version(current_version bigint) RETURNS bigint
      LANGUAGE sql VOLATILE AS $$
        SELECT GREATEST(
          current_version + 1,
          (('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint - 1)
            * ${VERSIONS_PER_TIMELINE} + 1)
      $$;
    `,
  },
  {
    version: 5,
    name: 'search pages by topic and id',
    // GET /search/:topic reads a page as WHERE lower(topic) = $1 AND id > $2 ORDER BY id LIMIT $3
    // (keyset pagination). An index on (lower(topic), id) answers it as one range scan, in order, that
    // stops after the page, at any depth; the index on lower(topic) alone (migration 1) made it read and
    // sort every book of the topic. It is the new index's prefix, so it goes.
    sql: `
      CREATE INDEX books_topic_id_idx ON books (lower(topic), id);
      DROP INDEX books_topic_idx;
    `,
  },
  {
    version: 6,
    name: 'book seed record',
    // What the seeder (services/catalog/src/seed.ts) made: one row, the generator and how many books,
    // ids 8 to books + 7. A seed of N books tops up to N from there, and refuses a table holding books
    // past that range (books it did not make). Read and written only by the seeder.
    sql: `
      CREATE TABLE book_seed (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        generator text    NOT NULL,
        books     integer NOT NULL CHECK (books >= 0),
        seeded_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

// Any constant shared by every origin; the lock serialises concurrent start-ups.
const MIGRATION_LOCK = 0x62617a6172;

/**
 * Applies pending migrations on the primary, each in its own transaction, under an advisory lock.
 * Commits are `synchronous_commit = local`: with a synchronous standby configured but not connected,
 * a start-up must not hang (the standby catches up by streaming).
 */
export async function migrate(db: Database, logger: Logger, migrations = MIGRATIONS): Promise<number[]> {
  const client = await db.connect();
  const applied: number[] = [];
  try {
    await client.query('SET synchronous_commit = local');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(
          `migration ${migration.version} (${migration.name}) failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
      applied.push(migration.version);
      logger.info({ version: migration.version, name: migration.name }, 'migration applied');
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.query('RESET synchronous_commit').catch(() => undefined);
    client.release();
  }
}

/** The newest schema version this build knows; replicas wait until their database has it. */
export const LATEST_SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

export async function schemaVersion(db: Database): Promise<number> {
  const exists = await db.query<{ present: boolean }>(
    `SELECT to_regclass('schema_migrations') IS NOT NULL AS present`,
  );
  if (!exists.rows[0]?.present) return 0;
  const res = await db.query<{ version: number | null }>(
    'SELECT max(version) AS version FROM schema_migrations',
  );
  return res.rows[0]?.version ?? 0;
}
