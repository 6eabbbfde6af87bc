/**
 * The real front's hit ratio on the same trace: a store started as `npm start -- --books N` starts it
 * (tools/devstack's startStack, embedded Postgres primary + standby, the catalogue seeded once), its
 * front restarted for each cache size with the size in the StorePolicy file (POLICY_FILE), warmed,
 * then sent a stretch of the trace as GET /info/:id; the hit ratio is read from the front's own
 * counters (bazar_cache_hits_total, bazar_cache_misses_total on /metrics).
 *
 * Warm-up: an LRU's content after a prefix of the trace is the prefix's last C distinct books in the
 * order of their last request, and asking for exactly those, least recent first, leaves an LRU of C
 * entries in that same state whatever it held before. So the warm-up sends those C requests (C misses,
 * the fewest that can fill C entries) instead of the whole prefix, and the counted requests continue
 * the trace where the prefix ended. For an exact LRU of C entries the counted hits then equal the
 * simulation's on the same requests (the `expected` figure); a front that is not one differs.
 */
import * as http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startStack, writePolicyFile, type Stack } from '../../../devstack/src/stack.js';
import { FIRST_SEEDED_ID } from '../../../../services/catalog/src/seed.js';
import { metric } from '../prom.js';

/** The cache's TTL for the measurement (the policy's maximum, a day): only capacity evicts. */
export const MEASURE_TTL_MS = 86_400_000;
/**
 * The byte bound given with each size unless the product's default is asked for: 2 KiB per entry (a
 * seeded book's entry counts about 640 bytes: body, key and CACHE_ENTRY_OVERHEAD_BYTES), within the
 * policy's limits, so that the entry count is what binds, as the simulations assume.
 */
export function liftedMaxBytes(capacity: number): number {
  return Math.min(1_073_741_824, Math.max(33_554_432, capacity * 2048));
}

export interface FrontStore {
  stack: Stack;
  policyFile: string;
  dataDir: string;
  seedSeconds: number;
  startSeconds: number;
  stop(): Promise<void>;
}

export async function startFrontStore(opts: {
  books: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}): Promise<FrontStore> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-hit-ratio-'));
  const policyFile = path.join(dataDir, 'policy.json');
  const begun = Date.now();
  let stack: Stack;
  try {
    stack = await startStack({
      dataDir,
      reset: true,
      // Reads only: no write waits for a disk, and the seed goes faster.
      fsync: false,
      consistencyMode: 'strict',
      fronts: 1,
      catalogReplicas: 1,
      orderReplicas: 0,
      logLevel: 'warn',
      logDir: path.join(dataDir, 'logs'),
      policyFile,
      cacheMaxEntries: 1000,
      cacheTtlMs: MEASURE_TTL_MS,
      books: opts.books,
      // The reconciler compares every cached book with the catalog every 2 s by default: it changes no
      // hit count here (nothing is written), only costs CPU on a machine the replay shares.
      envFor: (p): Record<string, string> =>
        p.service === 'front' ? { CACHE_RECONCILE_INTERVAL_MS: '600000' } : {},
      log: (proc, line) => {
        if (proc === 'seed' || proc === 'postgres') opts.log(`${proc}: ${line}`);
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const seedSeconds = (stack.seeded?.ms ?? 0) / 1000;
  return {
    stack,
    policyFile,
    dataDir,
    seedSeconds,
    startSeconds: (Date.now() - begun) / 1000,
    async stop() {
      await stack.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface FrontPoint {
  capacity: number;
  /** Requests sent to fill the cache (the LRU state after `prefix` requests of the trace). */
  warmupRequests: number;
  /** The trace's requests before the counted ones. */
  prefix: number;
  /** Requests counted, and the front's own counters over them. */
  requests: number;
  hits: number;
  missesCounted: number;
  /** hits / requests: the front's hit ratio. */
  ratio: number;
  /** hits / (hits + misses) straight from the two counters (see missesPerMiss). */
  counterRatio: number;
  /** Misses counted per request that missed (the counters' own view; 1 when each miss counts once). */
  missesPerMiss: number;
  /** Answers with X-Cache: hit, seen by the client. */
  xCacheHits: number;
  /** An exact LRU of the same size on the same counted requests, from the same state. */
  expected: number;
  entriesAfterWarmup: number;
  /** The front's byte bound in force (bazar_cache_max_bytes) and the bytes counted after the warm-up. */
  maxBytes: number;
  bytesAfterWarmup: number;
  rejectedFills: number;
  errors: number;
  seconds: number;
  requestsPerSecond: number;
}

interface Replay {
  xCacheHits: number;
  errors: number;
}

/** Sends GET /info/:id for each book index in order, `concurrency` at a time on keep-alive sockets. */
async function replay(
  url: string,
  bookIndexes: ArrayLike<number>,
  concurrency: number,
  agent: http.Agent,
): Promise<Replay> {
  const { hostname, port } = new URL(url);
  let next = 0;
  let xCacheHits = 0;
  let errors = 0;
  const one = (id: number): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ hostname, port, path: `/info/${id}`, agent }, (res) => {
        if (res.statusCode !== 200) errors++;
        else if (res.headers['x-cache'] === 'hit') xCacheHits++;
        res.resume();
        res.on('end', () => resolve());
        res.on('error', () => {
          errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (next < bookIndexes.length) {
      const i = next++;
      await one((bookIndexes[i] as number) + FIRST_SEEDED_ID);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return { xCacheHits, errors };
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return res.text();
}

/**
 * One cache size: the policy file says `capacity`, the front restarts (an empty cache of that size),
 * the warm-up sends `warmup` (book indexes, least recent first), then `counted` is replayed and the
 * front's counters read before and after.
 */
export async function measureFront(
  store: FrontStore,
  opts: {
    capacity: number;
    warmup: ArrayLike<number>;
    prefix: number;
    counted: ArrayLike<number>;
    expectedHits: number;
    concurrency: number;
    /** The byte bound to set (absent: the product's default stays). */
    maxBytes?: number;
  },
): Promise<FrontPoint> {
  const front = store.stack.fronts[0];
  if (!front) throw new Error('the stack has no front');
  await writePolicyFile(store.policyFile, {
    consistencyMode: 'strict',
    cache: {
      maxEntries: opts.capacity,
      ttlMs: MEASURE_TTL_MS,
      ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
    },
  });
  await front.start();
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  try {
    const warm = await replay(front.url, opts.warmup, opts.concurrency, agent);
    const before = await scrape(front.url);
    const t0 = Date.now();
    const run = await replay(front.url, opts.counted, opts.concurrency, agent);
    const seconds = (Date.now() - t0) / 1000;
    const after = await scrape(front.url);
    const delta = (name: string) => metric(after, name) - metric(before, name);
    const hits = delta('bazar_cache_hits_total');
    const missesCounted = delta('bazar_cache_misses_total');
    const requests = opts.counted.length;
    const missed = requests - hits;
    return {
      capacity: opts.capacity,
      warmupRequests: opts.warmup.length,
      prefix: opts.prefix,
      requests,
      hits,
      missesCounted,
      ratio: hits / requests,
      counterRatio: hits / (hits + missesCounted),
      missesPerMiss: missed > 0 ? missesCounted / missed : 0,
      xCacheHits: run.xCacheHits,
      expected: opts.expectedHits / requests,
      entriesAfterWarmup: metric(before, 'bazar_cache_entries'),
      maxBytes: metric(before, 'bazar_cache_max_bytes'),
      bytesAfterWarmup: metric(before, 'bazar_cache_bytes'),
      rejectedFills: metric(after, 'bazar_cache_rejected_fills_total'),
      errors: warm.errors + run.errors,
      seconds,
      requestsPerSecond: requests / seconds,
    };
  } finally {
    agent.destroy();
  }
}
