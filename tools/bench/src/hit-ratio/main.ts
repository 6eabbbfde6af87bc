/**
 * `npm run bench:hit-ratio`: how close the front's LRU comes to the best any cache could do, on a
 * Zipf workload over the whole catalogue (issue 23).
 *
 * For each skew: a seeded Zipf trace over N books (ranks shuffled onto book ids); for each cache size
 * the offline optimum (Belady's MIN), an exact LRU, LRU's theoretical curve (Che's approximation) and
 * W-TinyLFU's admission in front of an LRU, all on the same trace, counted over its second half; then
 * the real front (a store seeded with N books, its front restarted per size) on a stretch of the same
 * trace, read from its own counters; and what a sketch increment would add to the hit path. Writes
 * results.json and hit-ratio.svg to the results directory (and, with --docs, docs/perf/hit-ratio.svg).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIRST_SEEDED_ID } from '../../../../services/catalog/src/seed.js';
import { liftedMaxBytes, measureFront, startFrontStore, type FrontPoint, type FrontStore } from './front.js';
import { measureHitPath, type HitPathCost } from './hit-path.js';
import { optionsOrExit } from '../options.js';
import { parseOptions, USAGE, type HitRatioOptions } from './options.js';
import { hitRatioChart, pctLabel, stackCharts, type CurveSet } from './plot.js';
import { cheLru, nextUses, simulateBelady, simulateLru, simulateTinyLfu } from './policies.js';
import { zipfProbabilities, zipfTrace, type Trace } from './zipf.js';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
/** The aim of issue 23: at 1 % of the catalogue, LRU / OPT ≥ this. */
const AIM_PCT = 1;
const AIM_RATIO = 0.85;

interface SizeRow {
  pct: number;
  capacity: number;
  opt: number;
  /** Belady without bypass (every miss cached): demand paging's optimum. */
  minDemand: number;
  lru: number;
  che: number;
  cheCharacteristicTime: number;
  /**
   * The C most popular books cached for good (an LFU that knows the true popularity): the best an
   * online policy can do on independent requests, Σ of the top C probabilities. OPT knows the future.
   */
  topC: number;
  tinyLfu: number;
  lruOverOpt: number;
  tinyLfuOverOpt: number;
  front?: FrontPoint;
}

interface SkewResult {
  skew: number;
  traceSeconds: number;
  simSeconds: number;
  rows: SizeRow[];
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
const log = (line: string) => process.stdout.write(`[${elapsed()}] ${line}\n`);
const f3 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(3));

const capacityOf = (books: number, pct: number) => Math.max(1, Math.round((books * pct) / 100));

function simulate(opts: HitRatioOptions, trace: Trace, traceSeconds: number): SkewResult {
  const t0 = Date.now();
  const warm = Math.floor(opts.requests / 2);
  const next = nextUses(trace.requests, opts.books);
  const p = zipfProbabilities(opts.books, trace.skew);
  const rows: SizeRow[] = [];
  for (const pct of opts.sizesPct) {
    const capacity = capacityOf(opts.books, pct);
    const opt = simulateBelady(trace.requests, next, opts.books, capacity, warm).ratio;
    const minDemand = simulateBelady(trace.requests, next, opts.books, capacity, warm, {
      bypass: false,
    }).ratio;
    const lru = simulateLru(trace.requests, opts.books, capacity, warm).ratio;
    const che = cheLru(p, capacity);
    const tinyLfu = simulateTinyLfu(trace.requests, opts.books, capacity, warm).ratio;
    let topC = 0;
    for (let k = 0; k < Math.min(capacity, opts.books); k++) topC += p[k] as number;
    rows.push({
      pct,
      capacity,
      opt,
      minDemand,
      lru,
      che: che.ratio,
      cheCharacteristicTime: che.characteristicTime,
      topC,
      tinyLfu,
      lruOverOpt: lru / opt,
      tinyLfuOverOpt: tinyLfu / opt,
    });
    log(
      `  s=${trace.skew} ${pctLabel(pct).padStart(6)} (${capacity} entries): OPT ${f3(opt)} · MIN demand ${f3(minDemand)} · ` +
        `LRU ${f3(lru)} · Che ${f3(che.ratio)} · top C ${f3(topC)} · W-TinyLFU ${f3(tinyLfu)} · LRU/OPT ${f3(lru / opt)}`,
    );
  }
  return { skew: trace.skew, traceSeconds, simSeconds: (Date.now() - t0) / 1000, rows };
}

async function measureFrontPoints(
  opts: HitRatioOptions,
  store: FrontStore,
  traces: Map<number, Trace>,
  results: SkewResult[],
): Promise<void> {
  const prefix = Math.floor(opts.requests / 2);
  for (const skew of opts.frontSkews) {
    const trace = traces.get(skew) as Trace;
    const result = results.find((r) => r.skew === skew) as SkewResult;
    const counted = trace.requests.subarray(prefix, prefix + opts.frontRequests);
    for (const pct of opts.frontSizesPct) {
      const row = result.rows.find((r) => r.pct === pct) as SizeRow;
      const state = simulateLru(trace.requests, opts.books, row.capacity, prefix, prefix).state;
      const expected = simulateLru(
        trace.requests,
        opts.books,
        row.capacity,
        prefix,
        prefix + opts.frontRequests,
      );
      const warmup = Int32Array.from(state.oldestFirst());
      log(
        `  front, s=${skew} ${pctLabel(pct)} (${row.capacity} entries): warming with ${warmup.length} requests, ` +
          `then ${counted.length} counted…`,
      );
      const point = await measureFront(store, {
        capacity: row.capacity,
        warmup,
        prefix,
        counted,
        expectedHits: expected.hits,
        concurrency: opts.concurrency,
        ...(opts.frontDefaultBytes ? {} : { maxBytes: liftedMaxBytes(row.capacity) }),
      });
      row.front = point;
      log(
        `    measured ${f3(point.ratio)} (X-Cache ${f3(point.xCacheHits / point.requests)}, the counters' own ` +
          `hits/(hits+misses) ${f3(point.counterRatio)}, ${point.missesPerMiss.toFixed(2)} misses counted per miss) · ` +
          `exact LRU on the same requests ${f3(point.expected)} · ${point.requestsPerSecond.toFixed(0)} req/s · ` +
          `${point.entriesAfterWarmup} entries (${(point.bytesAfterWarmup / 2 ** 20).toFixed(1)} of ${(point.maxBytes / 2 ** 20).toFixed(0)} MiB) after warm-up · ${point.errors} errors`,
      );
    }
  }
}

function table(results: SkewResult[]): string {
  const lines = [
    '| skew | size | entries | OPT | LRU sim | LRU Che | front measured | exact LRU, same requests as front | W-TinyLFU sim | top C (ideal LFU) | LRU / OPT | W-TinyLFU / OPT | top C / OPT |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    for (const row of r.rows) {
      lines.push(
        `| ${r.skew} | ${pctLabel(row.pct)} | ${row.capacity} | ${f3(row.opt)} | ${f3(row.lru)} | ${f3(row.che)} | ` +
          `${f3(row.front?.ratio)} | ${f3(row.front?.expected)} | ${f3(row.tinyLfu)} | ${f3(row.topC)} | ${f3(row.lruOverOpt)} | ${f3(row.tinyLfuOverOpt)} | ${f3(row.topC / row.opt)} |`,
      );
    }
  }
  return lines.join('\n');
}

function gitState(file: string): string {
  try {
    const out = execFileSync('git', ['status', '--porcelain', '--', file], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return out === '' ? 'as committed' : `uncommitted changes (${out})`;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const opts = optionsOrExit('bench:hit-ratio', USAGE, parseOptions);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = path.resolve(opts.out ?? path.join(ROOT, 'bench-results', `hit-ratio-${stamp}`));
  const warm = Math.floor(opts.requests / 2);
  log(
    `${opts.books.toLocaleString('en-US')} books, skews ${opts.skews.join(', ')}, sizes ${opts.sizesPct.map(pctLabel).join(', ')}; ` +
      `trace of ${opts.requests.toLocaleString('en-US')} requests (seed ${opts.seed}), the first ${warm.toLocaleString('en-US')} warm the caches`,
  );
  const traces = new Map<number, Trace>();
  const results: SkewResult[] = [];
  for (const skew of opts.skews) {
    const t0 = Date.now();
    const trace = zipfTrace({ books: opts.books, skew, length: opts.requests, seed: opts.seed });
    const traceSeconds = (Date.now() - t0) / 1000;
    log(`Zipf s=${skew}: trace generated in ${traceSeconds.toFixed(1)} s`);
    traces.set(skew, trace);
    results.push(simulate(opts, trace, traceSeconds));
  }

  // The hit path: lookups that hit a cache of 1 % of the catalogue, in the first trace's order.
  const first = traces.get(opts.skews[0] as number) as Trace;
  const capacity = capacityOf(opts.books, AIM_PCT);
  const cached = new Uint8Array(opts.books);
  for (let r = 0; r < capacity; r++) cached[first.perm[r] as number] = 1;
  const ids = first.requests.filter((b) => cached[b] === 1).subarray(0, 200_000);
  for (let i = 0; i < ids.length; i++) ids[i] = (ids[i] as number) + FIRST_SEEDED_ID;
  log(`hit path: lru-cache get() vs get() + sketch increment, ${capacity} entries, rounds alternating…`);
  const hitPath: HitPathCost = measureHitPath({
    ids,
    capacity,
    ttlMs: 60_000,
    rounds: opts.quick ? 6 : 20,
    opsPerRound: opts.quick ? 500_000 : 2_000_000,
  });
  log(
    `  get() ${hitPath.getNs.toFixed(1)} ns/op · get() + sketch ${hitPath.getPlusSketchNs.toFixed(1)} ns/op · ` +
      `ratio ${hitPath.ratio.toFixed(2)}x (rounds ${hitPath.ratioRange.map((x) => x.toFixed(2)).join('–')}) · ` +
      `+${hitPath.addedNs.toFixed(1)} ns per request`,
  );

  let front: { seedSeconds: number; startSeconds: number; seconds: number } | undefined;
  if (opts.front && opts.frontSizesPct.length > 0 && opts.frontSkews.length > 0) {
    const t0 = Date.now();
    log(
      `starting a store with ${opts.books.toLocaleString('en-US')} seeded books (npm start -- --books ${opts.books})…`,
    );
    const abort = new AbortController();
    let store: FrontStore | undefined;
    const onSignal = (): void => {
      abort.abort();
      log('interrupted: stopping the store');
      void (store?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      store = await startFrontStore({ books: opts.books, log, signal: abort.signal });
      log(`store up in ${store.startSeconds.toFixed(1)} s (seed ${store.seedSeconds.toFixed(1)} s)`);
      await measureFrontPoints(opts, store, traces, results);
      front = { seedSeconds: store.seedSeconds, startSeconds: store.startSeconds, seconds: 0 };
    } finally {
      await store?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    front = { ...(front ?? { seedSeconds: 0, startSeconds: 0 }), seconds: (Date.now() - t0) / 1000 };
  }

  const aim = results.map((r) => {
    const row = r.rows.find((x) => x.pct === AIM_PCT);
    return {
      skew: r.skew,
      pct: AIM_PCT,
      lruOverOpt: row?.lruOverOpt,
      tinyLfuOverOpt: row?.tinyLfuOverOpt,
      met: row ? row.lruOverOpt >= AIM_RATIO : undefined,
      topCOverOpt: row ? row.topC / row.opt : undefined,
    };
  });
  const subtitle =
    `${opts.books.toLocaleString('en-US')} books; trace ${opts.requests.toLocaleString('en-US')} requests (seed ${opts.seed}), ` +
    `counted after the first ${warm.toLocaleString('en-US')}; front: ${opts.frontRequests.toLocaleString('en-US')} requests per size, ` +
    (opts.frontDefaultBytes ? 'its default byte bound' : 'byte bound lifted');
  const sets: CurveSet[] = results.map((r) => ({
    skew: r.skew,
    sizesPct: r.rows.map((x) => x.pct),
    opt: r.rows.map((x) => x.opt),
    lru: r.rows.map((x) => x.lru),
    che: r.rows.map((x) => x.che),
    topC: r.rows.map((x) => x.topC),
    tinyLfu: r.rows.map((x) => x.tinyLfu),
    front: r.rows.map((x) => x.front?.ratio),
  }));
  const svg = stackCharts(sets.map((s) => hitRatioChart(s, subtitle)));
  const json = {
    generated: new Date().toISOString(),
    command: `npm run bench:hit-ratio -- ${process.argv.slice(2).join(' ')}`.trim(),
    seconds: (Date.now() - started) / 1000,
    machine: {
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverage: os.loadavg(),
    },
    options: opts,
    trace: {
      books: opts.books,
      firstBookId: FIRST_SEEDED_ID,
      requests: opts.requests,
      warmup: warm,
      counted: opts.requests - warm,
      sampler:
        'inverse CDF over cumulative Zipf weights, binary search; ranks → books by a seeded permutation',
    },
    definitions: {
      hitRatio: 'hits / requests over the counted requests (after the warm-up)',
      opt: "Belady's MIN with bypass (a miss may be left uncached): the offline optimum; minDemand caches every miss",
      aim: `LRU / OPT >= ${AIM_RATIO} at ${AIM_PCT} % of the catalogue ("LRU within 15 % of the optimum")`,
      tinyLfu:
        'W-TinyLFU admission in front of one LRU: window LRU 1 % of the size, count-min sketch (4 x 4-bit, width >= size, halved every 10 x size increments), no doorkeeper',
      front:
        "the front's counters over the counted requests: ratio = Δbazar_cache_hits_total / requests; warm-up = the LRU state after the trace's first half, requested least recent first; byte bound lifted to 2 KiB per entry (at least 32 MiB) unless --front-default-bytes",
    },
    frontCacheSource: gitState('services/front/src/cache.ts'),
    aim,
    curves: results,
    hitPath,
    ...(front ? { frontRun: front } : {}),
  };
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'results.json'), JSON.stringify(json, null, 2) + '\n');
  await writeFile(path.join(outDir, 'hit-ratio.svg'), svg);
  if (opts.docs) {
    await mkdir(path.join(ROOT, 'docs', 'perf'), { recursive: true });
    await writeFile(path.join(ROOT, 'docs', 'perf', 'hit-ratio.svg'), svg);
  }

  process.stdout.write(`\n${table(results)}\n\n`);
  for (const a of aim) {
    process.stdout.write(
      `aim at ${AIM_PCT} %, s=${a.skew}: LRU / OPT = ${f3(a.lruOverOpt)} (needs >= ${AIM_RATIO}): ` +
        `${a.met ? 'MET' : '**MISSED**'}; W-TinyLFU / OPT = ${f3(a.tinyLfuOverOpt)}; ideal LFU (top C) / OPT = ${f3(a.topCOverOpt)}\n`,
    );
  }
  process.stdout.write(
    `hit path: get() ${hitPath.getNs.toFixed(1)} ns/op, get() + sketch increment ${hitPath.getPlusSketchNs.toFixed(1)} ns/op ` +
      `(${hitPath.ratio.toFixed(2)}x, +${hitPath.addedNs.toFixed(1)} ns)\n`,
  );
  process.stdout.write(
    `\nresults: ${outDir}${opts.docs ? ' and docs/perf/hit-ratio.svg' : ''} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:hit-ratio failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
