/**
 * The seeder's entry point, in the catalog image (the chart's seed Job runs it):
 *
 *   SEED_BOOKS=1000000 DATABASE_URL=postgres://... node dist/services/catalog/src/seed-main.js
 *
 * Waits until the primary's schema is migrated (by a catalog or order origin, as every schema change
 * is: it applies none itself), then seeds (seed.ts). Exit 0 when the store holds the books, 65 when
 * the table holds books the seeder did not make (refused, nothing changed), 78 for a bad variable,
 * 1 for anything else (the schema never came, the database failed).
 */
import { readConfig, databaseUrl, int, oneOf, str, ConfigError } from '../../shared/src/config.js';
import { createLogger } from '../../shared/src/logger.js';
import { Database } from '../../shared/src/db/database.js';
import { LATEST_SCHEMA_VERSION, schemaVersion } from '../../shared/src/db/migrations.js';
import { runMain, sleep } from '../../shared/src/main-helpers.js';
import { MAX_SEED_BOOKS, SeedRefused, seedBooks } from './seed.js';

export const seedSchema = {
  SERVICE_NAME: str({ default: 'bazar-seed' }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  /** The primary (the password, if any, from PGPASSWORD). */
  DATABASE_URL: databaseUrl(),
  /** How many books to have beside the lab's seven (ids 8 to SEED_BOOKS + 7). */
  SEED_BOOKS: int({ min: 0, max: MAX_SEED_BOOKS }),
  /** How long to wait for the database and its migrations before giving up. */
  SEED_SCHEMA_WAIT_MS: int({ default: 600_000, min: 0, max: 86_400_000 }),
};

async function main(): Promise<void> {
  const config = readConfig(seedSchema);
  if (!config.DATABASE_URL) throw new ConfigError('DATABASE_URL', 'is required');
  const logger = createLogger({ name: config.SERVICE_NAME, level: config.LOG_LEVEL });
  const db = new Database('primary', config.DATABASE_URL, logger, { applicationName: 'bazar-seed', max: 1 });
  const deadline = Date.now() + config.SEED_SCHEMA_WAIT_MS;
  let delay = 200;
  for (;;) {
    const version = await schemaVersion(db).catch((err: unknown) => (err as Error).message);
    if (typeof version === 'number' && version >= LATEST_SCHEMA_VERSION) break;
    const why =
      typeof version === 'number'
        ? `schema version ${version} < ${LATEST_SCHEMA_VERSION} (the catalog and order origins apply the migrations)`
        : version;
    if (Date.now() >= deadline) {
      await db.close();
      throw new Error(`the schema was not ready within ${config.SEED_SCHEMA_WAIT_MS} ms: ${why}`);
    }
    logger.info({ reason: why }, 'waiting for the schema');
    await sleep(delay);
    delay = Math.min(delay * 2, 5000);
  }
  await db.close();
  logger.info({ books: config.SEED_BOOKS }, 'seeding');
  try {
    const result = await seedBooks(config.DATABASE_URL, config.SEED_BOOKS, {
      progress: (done, total) => logger.info({ done, total }, 'seeding progress'),
    });
    logger.info(
      { ...result, seconds: Number((result.ms / 1000).toFixed(1)) },
      result.inserted > 0 ? 'seeded' : 'already seeded: nothing to do',
    );
  } catch (err) {
    if (!(err instanceof SeedRefused)) throw err;
    logger.error({ err: err.message }, 'seed refused');
    process.stderr.write(`seed refused: ${err.message}\n`);
    process.exit(65);
  }
}

runMain(main);
