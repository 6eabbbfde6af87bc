/**
 * What the front's cache costs in memory, measured: how many bytes of heap (and of RSS) one cached
 * book answer holds, and the RSS of a process whose cache is full at the default byte bound. The
 * figure behind CACHE_ENTRY_OVERHEAD_BYTES (services/front/src/cache.ts) comes from here.
 *
 *   npx tsc -p tsconfig.json && node dist/tools/bench/src/cache-memory.js [--ns 2000,5000,...] [--json]
 *
 * Each measurement runs in a child process of its own (node --expose-gc, and the chart's
 * --max-old-space-size=192 --no-memory-reducer), so no run inherits another's
 * heap. A child loads the front's modules (its app, http client, discovery, metrics: about what a front
 * holds besides its cache), builds a real FrontCache, collects garbage, reads process.memoryUsage(),
 * then fills the cache the way a miss of GET /info/:id does (reads.ts): the catalog's /info body of a
 * seeded book (JSON.stringify of the row, services/catalog/src/seed.ts bookAt), copied out of the
 * response as reads.ts copies it, with X-Served-By and X-Database strings of a pod's length made
 * fresh for each answer (as the HTTP parser makes them), the book's fence raised, then offerBook. It
 * collects garbage again and reads memoryUsage once more. Bytes per cached book are the slope of a
 * least-squares line through (N, growth) over several N; heap here is heapUsed + arrayBuffers (a
 * cached body's bytes live outside the V8 heap, in its ArrayBuffer).
 *
 * Then "at the bound", filled until it evicts and as much again: a cache with the default bounds
 * (10,000 entries, 32 MiB) filled with books (the entry bound binds first for book answers); the same
 * filled with search pages of 100 books (the largest page a client may ask for: the byte bound binds
 * first, this is a front at the default byte bound); and books with the entry bound at its largest
 * (1,000,000), so that the default byte bound binds for books too.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ME = fileURLToPath(import.meta.url);

/** The figures one child reports. */
interface Sample {
  kind: string;
  n: number;
  entries: number;
  cacheBytes: number;
  meanBodyBytes: number;
  meanKeyBytes: number;
  before: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
  evictions: number;
  ms: number;
}

type ChildKind = 'books' | 'books-nofence' | 'default-bounds' | 'byte-bound' | 'search-pages';

interface ChildOrder {
  kind: ChildKind;
  n: number;
}

// ---------------------------------------------------------------------------------------- the child

async function child(order: ChildOrder): Promise<Sample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  // What a front loads besides its cache, so that the baseline and the RSS are a front's.
  await import('../../../services/front/src/app.js');
  await import('../../../services/shared/src/http-client.js');
  await import('../../../services/shared/src/discovery-factory.js');
  const { createMetrics } = await import('../../../services/shared/src/metrics.js');
  createMetrics({ service: 'front', podName: 'bench-front' });
  const { FrontCache } = await import('../../../services/front/src/cache.js');
  const { DEFAULT_CACHE_MAX_BYTES, POLICY_LIMITS } = await import('../../../services/shared/src/policy.js');
  const { bookAt, FIRST_SEEDED_ID, TOPICS } = await import('../../../services/catalog/src/seed.js');
  const { encodeCursor } = await import('../../../services/shared/src/search-page.js');

  // The measured runs: room for every N, in entries and bytes. lru-cache allocates its per-slot arrays
  // for maxEntries up front, before the baseline is read, so they are not in the growth.
  const bounds =
    order.kind === 'default-bounds' || order.kind === 'search-pages'
      ? { maxEntries: 10_000, maxBytes: DEFAULT_CACHE_MAX_BYTES }
      : order.kind === 'byte-bound'
        ? { maxEntries: POLICY_LIMITS.cacheMaxEntries.max, maxBytes: DEFAULT_CACHE_MAX_BYTES }
        : { maxEntries: POLICY_LIMITS.cacheMaxEntries.max, maxBytes: POLICY_LIMITS.cacheMaxBytes.max };
  const cache = new FrontCache({ ...bounds, ttlMs: 3_600_000 });
  // A string as the HTTP parser hands it over: flat, of its own, not a slice or a rope of another.
  const fresh = (s: string): string => Buffer.from(s).toString('utf8');
  // Buffer.from of a copy: as reads.ts makes the body it caches (under 4 KiB: a view into the pool).
  const answer = (json: string): Buffer => Buffer.from(Buffer.from(json));
  const pod = (i: number) => `bazar-catalog-replica-7c9f5d8b4-${(i % 46_656).toString(36).padStart(5, '0')}`;
  const database = 'standby bazar-patroni-replica.default.svc:5432';

  for (let i = 0; i < 4; i++) gc();
  const before = process.memoryUsage();
  const started = performance.now();
  let bodyBytes = 0;
  let keyBytes = 0;
  let stored: number;
  const fill = (i: number): void => {
    if (order.kind === 'search-pages') {
      const topic = TOPICS[i % TOPICS.length]!;
      const books = Array.from({ length: 100 }, (_, j) => {
        const { id, title } = bookAt(FIRST_SEEDED_ID + ((i * 100 + j) % 1_000_000));
        return { id, title };
      });
      const after = books[books.length - 1]!.id;
      const body = answer(JSON.stringify({ topic, books, next: encodeCursor(topic, after) }));
      const key = FrontCache.searchKey(topic, { limit: 100, after: i });
      cache.offer(key, { body, version: 0, servedBy: fresh(pod(i)), database: fresh(database) });
      bodyBytes += body.byteLength;
      keyBytes += key.length;
      return;
    }
    const id = FIRST_SEEDED_ID + i;
    const body = answer(JSON.stringify({ ...bookAt(id), version: 1 }));
    if (order.kind !== 'books-nofence') cache.raiseFence(id, 1);
    cache.offerBook(id, { body, version: 1, servedBy: fresh(pod(i)), database: fresh(database) });
    bodyBytes += body.byteLength;
    keyBytes += FrontCache.bookKey(id).length;
  };
  if (order.kind === 'books' || order.kind === 'books-nofence') {
    for (let i = 0; i < order.n; i++) fill(i);
    stored = order.n;
  } else {
    // Until the cache is at its bound: it has evicted, then as many fills again as it holds.
    let i = 0;
    while (cache.stats().evictions === 0) fill(i++);
    const held = cache.stats().size;
    for (let j = 0; j < held; j++) fill(i++);
    stored = i;
  }
  const ms = performance.now() - started;
  for (let i = 0; i < 4; i++) gc();
  const after = process.memoryUsage();
  const stats = cache.stats();
  if ((order.kind === 'books' || order.kind === 'books-nofence') && stats.size !== order.n)
    throw new Error(`expected ${order.n} entries, the cache holds ${stats.size}`);
  // Keep the cache alive until after the measurement.
  if (stats.bytes > stats.maxBytes) throw new Error(`the cache holds ${stats.bytes} > ${stats.maxBytes}`);
  return {
    kind: order.kind,
    n: order.n,
    entries: stats.size,
    cacheBytes: stats.bytes,
    meanBodyBytes: bodyBytes / stored,
    meanKeyBytes: keyBytes / stored,
    before,
    after,
    evictions: stats.evictions,
    ms,
  };
}

// --------------------------------------------------------------------------------------- the parent

function runChild(order: ChildOrder): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const proc = fork(ME, ['--child', JSON.stringify(order)], {
      // The chart's node flags and heap limit (values.yaml nodeFlags, config.nodeOptions), and gc().
      execArgv: ['--expose-gc', '--max-old-space-size=192', '--no-memory-reducer'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let sample: Sample | undefined;
    proc.on('message', (m) => (sample = m as Sample));
    proc.on('error', reject);
    proc.on('exit', (code) =>
      sample ? resolve(sample) : reject(new Error(`child ${JSON.stringify(order)} exited ${code}`)),
    );
  });
}

/** Least squares y = a + b x, with R². */
function fit(points: ReadonlyArray<[number, number]>): { a: number; b: number; r2: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
    syy += (y - my) ** 2;
  }
  const b = sxy / sxx;
  return { a: my - b * mx, b, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

const heap = (m: NodeJS.MemoryUsage): number => m.heapUsed + m.arrayBuffers;
const mib = (bytes: number): string => (bytes / 1_048_576).toFixed(1);

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function parent(): Promise<void> {
  const ns = (option('--ns') ?? '5000,10000,20000,40000,80000').split(',').map(Number);
  if (ns.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error('--ns: positive integers, comma-separated');
  const json = process.argv.includes('--json');
  const samples: Sample[] = [];
  for (const kind of ['books', 'books-nofence'] as const) {
    for (const n of ns) samples.push(await runChild({ kind, n }));
  }
  const atBound: Sample[] = [];
  for (const kind of ['default-bounds', 'byte-bound', 'search-pages'] as const) {
    atBound.push(await runChild({ kind, n: 0 }));
  }
  const { CACHE_ENTRY_OVERHEAD_BYTES } = await import('../../../services/front/src/cache.js');
  const lines = (kind: string) => {
    const s = samples.filter((x) => x.kind === kind);
    const heapFit = fit(s.map((x) => [x.n, heap(x.after) - heap(x.before)]));
    const rssFit = fit(s.map((x) => [x.n, x.after.rss - x.before.rss]));
    const body = s.reduce((t, x) => t + x.meanBodyBytes, 0) / s.length;
    const key = s.reduce((t, x) => t + x.meanKeyBytes, 0) / s.length;
    return { kind, heapFit, rssFit, body, key, overhead: heapFit.b - body - key };
  };
  const fits = [lines('books'), lines('books-nofence')];
  if (json) {
    console.log(JSON.stringify({ node: process.version, samples, fits, atBound }, null, 2));
    return;
  }
  console.log(`cache memory, ${process.version} ${process.arch}, N = ${ns.join(', ')} (one child each)`);
  console.log('');
  console.log('kind            N        heap+ab growth   RSS growth   per book (heap)');
  for (const s of samples) {
    const h = heap(s.after) - heap(s.before);
    console.log(
      `${s.kind.padEnd(15)} ${String(s.n).padStart(7)}  ${mib(h).padStart(10)} MiB ${mib(s.after.rss - s.before.rss).padStart(8)} MiB ${(h / s.n).toFixed(0).padStart(10)} B`,
    );
  }
  console.log('');
  for (const f of fits) {
    console.log(
      `${f.kind}: heap+arrayBuffers ${f.heapFit.b.toFixed(0)} B per book (R² ${f.heapFit.r2.toFixed(4)}), ` +
        `RSS ${f.rssFit.b.toFixed(0)} B per book (R² ${f.rssFit.r2.toFixed(4)}); ` +
        `mean body ${f.body.toFixed(0)} B, key ${f.key.toFixed(1)} B: ` +
        `${f.overhead.toFixed(0)} B per entry beyond body and key`,
    );
  }
  console.log(`CACHE_ENTRY_OVERHEAD_BYTES in force: ${CACHE_ENTRY_OVERHEAD_BYTES}`);
  console.log('');
  console.log('at the bound                  entries   counted     heap+ab       RSS   body/entry');
  for (const s of atBound) {
    console.log(
      `${s.kind.padEnd(28)} ${String(s.entries).padStart(8)} ${mib(s.cacheBytes).padStart(6)} MiB ` +
        `${mib(heap(s.after)).padStart(7)} MiB ${mib(s.after.rss).padStart(6)} MiB ${s.meanBodyBytes.toFixed(0).padStart(8)} B` +
        `   (before filling: heap+ab ${mib(heap(s.before))} MiB, RSS ${mib(s.before.rss)} MiB)`,
    );
  }
}

const at = process.argv.indexOf('--child');
if (at >= 0) {
  const sample = await child(JSON.parse(process.argv[at + 1]!) as ChildOrder);
  process.send!(sample, () => process.exit(0));
} else {
  await parent();
}
