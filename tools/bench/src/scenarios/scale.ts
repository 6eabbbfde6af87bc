/**
 * The bench at scale (`npm run bench -- --books N`): a strict store (npm start's shape with two fronts)
 * and its bare chain on one Postgres pair whose books table holds the lab's seven and N seeded books
 * (services/catalog/src/seed.ts, as npm start -- --books N seeds them). Against the chain, rounds
 * interleaved, chain first:
 *
 *   - the uncached read (GET /info/:id, Cache-Control: no-cache) of a random book over all N + 7, at
 *     10 clients and at one, so a read finds its row in Postgres' buffers only as often as it would;
 *   - a search page (GET /search/:topic?limit=20, no-cache) at a random depth: a topic uniform over the
 *     seeder's 300 and the page after a random id (Bazar: its opaque cursor; the chain: the id), the
 *     same keyset query on the same (lower(topic), id) index, at 10 clients and at one;
 *   - the purchase of a random seeded book at 1 and 10 clients.
 *
 * Each side draws from its own seeded generator (the same distribution, not the same books: the side
 * that went second would find the other's pages warm).
 */
import pg from 'pg';
import { TOPICS } from '../../../../services/catalog/src/seed.js';
import { compare, type Comparison } from '../compare.js';
import type { LoadSpec } from '../load.js';
import type { BenchRun } from '../run.js';
import { bazarSearchPath, chainSearchPath, lastBookId, randomBook, randomSearch } from '../scale-paths.js';
import { seededRandom } from '../random.js';
import { NPM_START_SHAPE, startBenchStack, startChainFor } from '../stacks.js';
import { interleaved } from './common.js';
import { chainName } from './purchases.js';

export const SCALE_SEARCH_LIMIT = 20;

export interface ScaleFigures {
  books: number;
  seedMs: number | undefined;
  /** What Postgres holds and how much of it fits in its buffers. */
  sizes: { table: string; indexes: string; sharedBuffers: string; effectiveCacheSize: string };
  comparisons: Comparison[];
}

async function sizes(primaryUrl: string): Promise<ScaleFigures['sizes']> {
  const client = new pg.Client({ connectionString: primaryUrl });
  await client.connect();
  try {
    const r = await client.query<{ table: string; indexes: string; sb: string; ecs: string }>(
      `SELECT pg_size_pretty(pg_table_size('books')) AS table,
              pg_size_pretty(pg_indexes_size('books')) AS indexes,
              current_setting('shared_buffers') AS sb,
              current_setting('effective_cache_size') AS ecs`,
    );
    const row = r.rows[0]!;
    return { table: row.table, indexes: row.indexes, sharedBuffers: row.sb, effectiveCacheSize: row.ecs };
  } finally {
    await client.end();
  }
}

export async function runScale(run: BenchRun, books: number): Promise<ScaleFigures> {
  const d = run.durations;
  const strict = await startBenchStack(run, {
    label: 'strict',
    mode: 'strict',
    fsync: true,
    ...NPM_START_SHAPE,
    books,
  });
  const chain = await startChainFor(run, strict);
  const size = await sizes(strict.pair.primaryUrl);
  run.log(
    `books table ${size.table} + indexes ${size.indexes}; shared_buffers ${size.sharedBuffers}, ` +
      `effective_cache_size ${size.effectiveCacheSize}`,
  );
  const last = lastBookId(books);
  const front = strict.stack.fronts[0]!.url;
  const chainFront = chain.chain.fronts[0]!.url;
  const noCache = { 'cache-control': 'no-cache' };
  // Seeds: 1 for the chain, 2 for Bazar, per kind of request.
  const rng = (kind: number, side: 'chain' | 'bazar') => seededRandom(kind * 10 + (side === 'chain' ? 1 : 2));
  const read = (side: 'chain' | 'bazar', connections: number): LoadSpec => {
    const rand = rng(1, side);
    return {
      url: side === 'chain' ? chainFront : front,
      connections,
      path: () => `/info/${randomBook(rand, 1, last)}`,
      ...(side === 'bazar' ? { headers: noCache, watch: strict.watch } : { watch: chain.watch }),
    };
  };
  const search = (side: 'chain' | 'bazar', connections: number): LoadSpec => {
    const rand = rng(2, side);
    const toPath = side === 'chain' ? chainSearchPath : bazarSearchPath;
    return {
      url: side === 'chain' ? chainFront : front,
      connections,
      path: () => toPath(randomSearch(rand, TOPICS, books), SCALE_SEARCH_LIMIT),
      ...(side === 'bazar' ? { headers: noCache, watch: strict.watch } : { watch: chain.watch }),
    };
  };
  const purchase = (side: 'chain' | 'bazar', connections: number): LoadSpec => {
    const rand = rng(3, side);
    return {
      url: side === 'chain' ? chainFront : front,
      connections,
      method: 'POST',
      path: () => `/purchase/${randomBook(rand, 8, last)}`,
      watch: side === 'chain' ? chain.watch : strict.watch,
    };
  };
  const comparisons: Comparison[] = [];
  const pair = async (
    key: string,
    path: string,
    floorName: string,
    make: (side: 'chain' | 'bazar', c: number) => LoadSpec,
    connections: number,
    opts: { rounds: number; seconds: number; warmSeconds: number },
  ) => {
    const [f, b] = await interleaved(run, [make('chain', connections), make('bazar', connections)], opts);
    const c = compare(key, path, connections, floorName, f!, b!);
    run.log(
      `${path}, ${connections} conn${connections > 1 ? 's' : ''}: ${c.bazar.rps.toFixed(0)}/s vs chain ` +
        `${c.floor.rps.toFixed(0)}/s (${c.ratios.rps.toFixed(2)}x), p50 ${c.ratios.p50.toFixed(2)}x`,
    );
    comparisons.push(c);
  };
  const reads = { rounds: d.rounds, seconds: d.seconds, warmSeconds: d.warmSeconds };
  const reads1 = { rounds: d.rounds, seconds: d.c1Seconds, warmSeconds: 0 };
  const buys = { rounds: d.purchaseRounds, seconds: d.purchaseRoundSeconds, warmSeconds: d.warmSeconds / 2 };
  const label = books.toLocaleString('en-US');
  await pair(`scale uncached/10`, `uncached read, ${label} books`, 'read chain', read, 10, reads);
  await pair(`scale uncached/1`, `uncached read, ${label} books`, 'read chain', read, 1, reads1);
  await pair(`scale search/10`, `search page, ${label} books`, 'search chain', search, 10, reads);
  await pair(`scale search/1`, `search page, ${label} books`, 'search chain', search, 1, reads1);
  const floor = chainName(chain);
  await pair(`scale purchase/1`, `strict purchase, ${label} books`, floor, purchase, 1, buys);
  await pair(`scale purchase/10`, `strict purchase, ${label} books`, floor, purchase, 10, buys);
  await chain.stop();
  await strict.stop();
  return { books, seedMs: strict.stack.seeded?.ms, sizes: size, comparisons };
}
