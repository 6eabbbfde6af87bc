/**
 * `npm run bench`: Bazar's performance figures, measured in one run on this machine.
 *
 *   node dist/tools/bench/src/main.js [--quick] [--docs] [--out DIR] [--fsync on|off|both]
 *
 * Starts the store locally (embedded Postgres primary + hot standby, real service processes), drives it
 * with autocannon and prints ONE table: cached GET /info through the front against a bare node:http
 * server returning the same JSON (the in-run baseline), cache on vs off, purchase latency per
 * consistency mode, the read that misses after an invalidation, invalidation fan-out time to N fronts,
 * and uncached read throughput as catalog replicas go 1 → 2 → 4. Absolute figures drift on a shared
 * machine; the ratios against the baseline measured minutes apart in the same run are the point.
 *
 * --quick   short runs (CI-style smoke, ~1 min); --docs  also rewrite docs/performance.md's results
 * section and docs/perf/*.svg; --out  results directory (default bench-results/<timestamp>);
 * --fsync   Postgres fsync for the stacks: on (as `npm start` has it; the --quick default), off, or both
 * (the full-run default: adds a strict-mode purchase row with fsync off, showing what the disk costs).
 */
import { chmod, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startStack, type ConsistencyMode, type Stack } from '../../devstack/src/stack.js';
import { Client } from './client.js';
import { load, paced, pool, p, type LoadResult, type LoadSpec } from './load.js';
import { startBaseline, startFront, type Spawned } from './processes.js';
import { diff, parseHistogram, quantile, type Histogram } from './prom.js';
import { percentile, Samples } from './stats.js';
import { barChart, lineChart } from './svg.js';
import { renderMarkdown, renderText, type Row, type Target } from './report.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const BOOKS = [1, 2, 3, 4, 5, 6, 7];
const CONNECTIONS = 50;
/**
 * The paced (open-loop) rate for latency below saturation, shared by the 50 connections: a quarter of
 * the baseline's saturated throughput in this run, at most this many requests per second.
 */
const MAX_PACED_RATE = 5000;

const args = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    docs: { type: 'boolean', default: false },
    out: { type: 'string' },
    fsync: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
}).values;
if (args.help) {
  process.stdout.write(
    'Usage: npm run bench -- [--quick] [--docs] [--out DIR] [--fsync on|off|both]\n' +
      'Starts Bazar locally, measures it with autocannon and prints one table (see docs/performance.md).\n',
  );
  process.exit(0);
}
const quick = args.quick === true;
// Full runs measure both: fsync on is what `npm start` does; off shows what the disk costs.
args.fsync ??= quick ? 'on' : 'both';
if (!['on', 'off', 'both'].includes(args.fsync)) {
  process.stderr.write('bench: --fsync must be on, off or both\n');
  process.exit(2);
}
const fsyncMain = args.fsync !== 'off';
const cfg = quick
  ? {
      rounds: 2,
      seconds: 1.5,
      c1Seconds: 2,
      warmSeconds: 1,
      purchaseRounds: 2,
      purchaseRoundSeconds: 1,
      missProbes: 30,
      fanoutProbes: 50,
    }
  : {
      rounds: 5,
      seconds: 2.5,
      c1Seconds: 4,
      warmSeconds: 2,
      purchaseRounds: 4,
      purchaseRoundSeconds: 1,
      missProbes: 100,
      fanoutProbes: 200,
    };

const log = (msg: string) =>
  process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);
const t0 = Date.now();

// Everything started is stopped on the way out, Ctrl-C included.
const cleanups: Array<() => Promise<void>> = [];
async function cleanup(): Promise<void> {
  while (cleanups.length > 0)
    await cleanups
      .pop()?.()
      .catch(() => undefined);
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    log(`${sig}: stopping`);
    void cleanup().then(() => process.exit(130));
  });
}

interface StackSpec {
  mode: ConsistencyMode;
  fsync: boolean;
  fronts: number;
  catalogReplicas: number;
  orderReplicas: number;
}

interface BenchStack {
  stack: Stack;
  stop(): Promise<void>;
}

async function startBenchStack(spec: StackSpec): Promise<BenchStack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-bench-'));
  await chmod(dataDir, 0o755);
  const started = Date.now();
  const stack = await startStack({
    dataDir,
    reset: true,
    fsync: spec.fsync,
    consistencyMode: spec.mode,
    fronts: spec.fronts,
    catalogReplicas: spec.catalogReplicas,
    orderReplicas: spec.orderReplicas,
    logLevel: 'warn',
    logDir: path.join(dataDir, 'logs'),
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const i = cleanups.indexOf(stop);
    if (i >= 0) cleanups.splice(i, 1);
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  cleanups.push(stop);
  log(
    `${spec.mode} stack up in ${((Date.now() - started) / 1000).toFixed(1)} s (fsync ${spec.fsync ? 'on' : 'off'}, ` +
      `${spec.fronts} fronts, catalog 1+${spec.catalogReplicas}, order 1+${spec.orderReplicas})`,
  );
  return { stack, stop };
}

const client = new Client();
let probeErrors = 0;

async function restockAll(frontUrl: string, adminToken: string): Promise<void> {
  for (const id of BOOKS) {
    await client.json(`${frontUrl}/books/${id}/restock`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ quantity: 1_000_000 }),
    });
  }
}

async function warmCache(frontUrl: string): Promise<void> {
  for (let i = 0; i < 2; i++) for (const id of BOOKS) await client.request(`${frontUrl}/info/${id}`);
}

interface PurchaseFigures {
  c1: LoadResult;
  c10: LoadResult;
  fanout: Histogram;
  miss: MissFigures;
}

interface MissFigures {
  miss: Samples;
  hit: Samples;
  probes: number;
  /** First reads after an acknowledged purchase that still showed the old version. */
  stale: number;
  /** First reads after a purchase answered from the cache (stale or not). */
  firstReadHits: number;
}

async function scrapeFanout(stack: Stack, mode: ConsistencyMode): Promise<Histogram> {
  const parts = await Promise.all(
    stack.orders.map(async (o) =>
      parseHistogram((await client.request(`${o.url}/metrics`)).body, 'bazar_invalidation_fanout_seconds', {
        mode,
      }),
    ),
  );
  return {
    buckets: (parts[0]?.buckets ?? []).map(([le], i) => [
      le,
      parts.reduce((a, h) => a + (h.buckets[i]?.[1] ?? 0), 0),
    ]),
    count: parts.reduce((a, h) => a + h.count, 0),
    sum: parts.reduce((a, h) => a + h.sum, 0),
  };
}

/** Read (hit) → purchase → first read (the miss the invalidation caused) → second read (a hit again). */
async function missAfterInvalidation(frontUrl: string, probes: number): Promise<MissFigures> {
  const out: MissFigures = { miss: new Samples(), hit: new Samples(), probes, stale: 0, firstReadHits: 0 };
  for (let i = 0; i < probes; i++) {
    const id = BOOKS[i % BOOKS.length] as number;
    for (let k = 0; k < 3; k++) {
      const warm = await client.request(`${frontUrl}/info/${id}`);
      if (warm.headers['x-cache'] === 'hit') break;
    }
    const bought = await client.request(`${frontUrl}/purchase/${id}`, { method: 'POST' });
    if (bought.status !== 200) {
      probeErrors++;
      continue;
    }
    const version = (JSON.parse(bought.body) as { version: number }).version;
    const first = await client.request(`${frontUrl}/info/${id}`);
    const second = await client.request(`${frontUrl}/info/${id}`);
    if (first.status !== 200 || second.status !== 200) probeErrors++;
    if ((JSON.parse(first.body) as { version: number }).version < version) out.stale++;
    if (first.headers['x-cache'] === 'hit') out.firstReadHits++;
    else out.miss.push(first.ms);
    if (second.headers['x-cache'] === 'hit') out.hit.push(second.ms);
  }
  return out;
}

interface PurchaseTarget {
  label: string;
  mode: ConsistencyMode;
  stack: Stack;
}

/**
 * Purchase latency in every mode, with the modes' stacks running side by side and their rounds
 * interleaved, so that drift on a shared machine hits every mode alike; then the fan-out histograms and
 * the read after an invalidation, per mode.
 */
async function purchases(targets: PurchaseTarget[]): Promise<Map<string, PurchaseFigures>> {
  const spec = (t: PurchaseTarget, connections: number): LoadSpec => ({
    url: t.stack.fronts[0]!.url,
    connections,
    duration: cfg.purchaseRoundSeconds,
    method: 'POST',
    paths: BOOKS.map((id) => `/purchase/${id}`),
  });
  const before = new Map<string, Histogram>();
  for (const t of targets) {
    await restockAll(t.stack.fronts[0]!.url, t.stack.adminToken);
    before.set(t.label, await scrapeFanout(t.stack, t.mode));
    await load({ ...spec(t, 1), duration: 1 }); // warm connections and query plans
  }
  const runs = new Map<string, { c1: LoadResult[]; c10: LoadResult[] }>(
    targets.map((t) => [t.label, { c1: [], c10: [] }]),
  );
  for (const connections of [1, 10] as const) {
    for (let r = 0; r < cfg.purchaseRounds; r++) {
      for (const t of targets) {
        const result = await load(spec(t, connections));
        runs.get(t.label)![connections === 1 ? 'c1' : 'c10'].push(result);
      }
    }
  }
  const out = new Map<string, PurchaseFigures>();
  for (const t of targets) {
    const fanout = diff(await scrapeFanout(t.stack, t.mode), before.get(t.label)!);
    const miss = await missAfterInvalidation(t.stack.fronts[0]!.url, cfg.missProbes);
    const c1 = pool(runs.get(t.label)!.c1);
    const c10 = pool(runs.get(t.label)!.c10);
    out.set(t.label, { c1, c10, fanout, miss });
    log(
      `${t.label}: purchase c1 p50 ${p(c1, 50).toFixed(2)} ms, c10 ${c10.rps.toFixed(0)}/s; ` +
        `miss p50 ${percentile(miss.miss.values(), 50).toFixed(2)} ms`,
    );
  }
  return out;
}

interface MainFigures {
  baseline: LoadResult;
  cached: LoadResult;
  ratios: number[];
  baselineC1: LoadResult;
  cachedC1: LoadResult;
  pacedRate: number;
  baselineRate: LoadResult;
  cachedRate: LoadResult;
  uncached: LoadResult;
  uncachedC1: LoadResult;
  replicas: Array<{ k: number; result: LoadResult }>;
  fanoutDirect: Array<{ n: number; samples: Samples }>;
}

async function mainStack(stack: Stack): Promise<MainFigures> {
  const front = stack.fronts[0]!;
  const frontPid = front.pid();
  await restockAll(front.url, stack.adminToken);
  await warmCache(front.url);
  const body = (await client.request(`${front.url}/info/1`)).body;
  const spawned: Spawned[] = [];
  const stopSpawned = async () => {
    await Promise.all(spawned.map((s) => s.stop()));
  };
  cleanups.push(stopSpawned);
  try {
    const baseline = await startBaseline(body);
    spawned.push(baseline);
    const replicas = stack.catalogs.filter((c) => c.role === 'replica');
    const orders = stack.orders.map((o) => ({ name: o.name, url: o.url }));
    const extra = new Map<number, Spawned>();
    for (const k of [1, 2, 4]) {
      const f = await startFront({
        name: `bench-front-r${k}`,
        catalogs: replicas.slice(0, k).map((c) => ({ name: c.name, url: c.url })),
        orders,
        adminToken: stack.adminToken,
        internalToken: stack.internalToken,
        mode: 'strict',
      });
      spawned.push(f);
      extra.set(k, f);
    }
    log(`baseline server and ${extra.size} extra fronts up`);

    // 1. Cached GET /info through the front vs the bare node:http baseline, alternating rounds.
    const cachedSpec: LoadSpec = { url: `${front.url}/info/1`, connections: CONNECTIONS, pids: [frontPid] };
    const baseSpec: LoadSpec = {
      url: `${baseline.url}/info/1`,
      connections: CONNECTIONS,
      pids: [baseline.pid],
    };
    await load({ ...baseSpec, duration: cfg.warmSeconds });
    await load({ ...cachedSpec, duration: cfg.warmSeconds });
    const baseRuns: LoadResult[] = [];
    const cachedRuns: LoadResult[] = [];
    for (let r = 0; r < cfg.rounds; r++) {
      baseRuns.push(await load({ ...baseSpec, duration: cfg.seconds }));
      cachedRuns.push(await load({ ...cachedSpec, duration: cfg.seconds }));
      log(
        `round ${r + 1}: baseline ${baseRuns[r]!.rps.toFixed(0)}/s, cached ${cachedRuns[r]!.rps.toFixed(0)}/s ` +
          `(${(cachedRuns[r]!.rps / baseRuns[r]!.rps).toFixed(2)}x)`,
      );
    }
    const baselineC1 = await load({ ...baseSpec, connections: 1, duration: cfg.c1Seconds });
    const cachedC1 = await load({ ...cachedSpec, connections: 1, duration: cfg.c1Seconds });
    // The same 50 connections below saturation: latency without the queueing a closed loop adds.
    const pacedRate = Math.max(100, Math.min(MAX_PACED_RATE, Math.round(pool(baseRuns).rps / 4 / 100) * 100));
    const pacedSpec = { connections: CONNECTIONS, rate: pacedRate, seconds: cfg.c1Seconds };
    const baselineRate = await paced({ ...pacedSpec, url: baseSpec.url, pids: [baseline.pid] });
    const cachedRate = await paced({ ...pacedSpec, url: cachedSpec.url, pids: [frontPid] });

    // 2. Cache off: Cache-Control: no-cache goes front → catalog → Postgres for every request.
    const uncachedSpec: LoadSpec = {
      url: front.url,
      connections: CONNECTIONS,
      headers: { 'cache-control': 'no-cache' },
      paths: BOOKS.map((id) => `/info/${id}`),
      pids: [frontPid],
    };
    await load({ ...uncachedSpec, duration: cfg.warmSeconds });
    const uncachedRuns: LoadResult[] = [];
    for (let r = 0; r < Math.min(2, cfg.rounds); r++)
      uncachedRuns.push(await load({ ...uncachedSpec, duration: cfg.seconds }));
    const uncachedC1 = await load({ ...uncachedSpec, connections: 1, duration: cfg.c1Seconds });
    log(`uncached ${pool(uncachedRuns).rps.toFixed(0)}/s; c1 p50 ${p(uncachedC1, 50).toFixed(2)} ms`);

    // 3. Uncached reads as catalog replicas go 1 → 2 → 4 (one extra front per size; rounds interleaved).
    const replicaRuns = new Map<number, LoadResult[]>([1, 2, 4].map((k) => [k, []]));
    for (const k of [1, 2, 4]) await load({ ...uncachedSpec, url: extra.get(k)!.url, pids: [], duration: 1 });
    for (let r = 0; r < Math.min(2, cfg.rounds); r++) {
      for (const k of [1, 2, 4]) {
        replicaRuns
          .get(k)!
          .push(await load({ ...uncachedSpec, url: extra.get(k)!.url, pids: [], duration: cfg.seconds }));
      }
    }
    const replicaFigures = [1, 2, 4].map((k) => ({ k, result: pool(replicaRuns.get(k)!) }));
    log(`replicas: ${replicaFigures.map((f) => `${f.k}: ${f.result.rps.toFixed(0)}/s`).join(', ')}`);

    // 4. Invalidation fan-out to N fronts, timed here: what an order pod does after a commit.
    const targets = [front.url, stack.fronts[1]?.url, extra.get(1)!.url, extra.get(2)!.url].filter(
      (u): u is string => u !== undefined,
    );
    const current = await client.json<{ version: number }>(`${front.url}/info/7`, {
      headers: { 'cache-control': 'no-cache' },
    });
    const push = JSON.stringify({ items: [{ bookId: 7, version: current.data.version }], origin: 'bench' });
    const fanoutDirect: Array<{ n: number; samples: Samples }> = [];
    for (const n of [1, 2, 4]) {
      const samples = new Samples();
      for (let i = 0; i < cfg.fanoutProbes; i++) {
        const started = process.hrtime.bigint();
        const replies = await Promise.all(
          targets.slice(0, n).map((u) =>
            client.request(`${u}/internal/invalidate`, {
              method: 'POST',
              headers: { authorization: `Bearer ${stack.internalToken}` },
              body: push,
            }),
          ),
        );
        if (replies.some((r) => r.status !== 200)) probeErrors++;
        if (i >= 5) samples.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
      fanoutDirect.push({ n, samples });
    }
    return {
      baseline: pool(baseRuns),
      cached: pool(cachedRuns),
      ratios: cachedRuns.map((c, i) => c.rps / baseRuns[i]!.rps),
      baselineC1,
      cachedC1,
      pacedRate,
      baselineRate,
      cachedRate,
      uncached: pool(uncachedRuns),
      uncachedC1,
      replicas: replicaFigures,
      fanoutDirect,
    };
  } finally {
    cleanups.splice(cleanups.indexOf(stopSpawned), 1);
    await stopSpawned();
  }
}

/** fdatasync latency (ms, p50) of an 8 KiB write where the stacks keep their data: what a WAL flush costs. */
async function diskSyncMs(): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bazar-bench-fsync-'));
  const file = await open(path.join(dir, 'probe'), 'w');
  const block = Buffer.alloc(8192, 1);
  const samples = new Samples();
  try {
    for (let i = 0; i < 40; i++) {
      await file.write(block, 0, block.length, 0);
      const started = process.hrtime.bigint();
      await file.datasync();
      samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    await file.close();
    await rm(dir, { recursive: true, force: true });
  }
  return percentile(samples.values(), 50);
}

function errorsOf(r: LoadResult): number {
  return r.errors + r.timeouts + r.non2xx;
}

function loadRow(name: string, r: LoadResult, note = ''): Row {
  return {
    name,
    connections: undefined,
    rps: r.rps,
    p50: p(r, 50),
    p99: p(r, 99),
    note,
    errors: errorsOf(r),
    cpuUs: r.cpuUsPerRequest,
  };
}

function sampleRow(name: string, s: Samples, note = '', errors = 0): Row {
  return {
    name,
    rps: undefined,
    p50: percentile(s.values(), 50),
    p99: percentile(s.values(), 99),
    note,
    errors,
  };
}

async function main(): Promise<void> {
  const busy = os.loadavg()[0] ?? 0;
  if (busy > 1.5) {
    log(
      `load average ${busy.toFixed(2)} on ${os.availableParallelism()} CPUs: other work is running; figures will be noisy`,
    );
  }
  const fsyncMs = await diskSyncMs();
  log(`disk: fdatasync of 8 KiB p50 ${fsyncMs.toFixed(2)} ms`);
  const main = await startBenchStack({
    mode: 'strict',
    fsync: fsyncMain,
    fronts: 2,
    catalogReplicas: 4,
    orderReplicas: 1,
  });
  const fig = await mainStack(main.stack);
  // The other modes' stacks run beside the main one, so their purchase rounds can interleave.
  const purchaseTargets: PurchaseTarget[] = [{ label: 'strict', mode: 'strict', stack: main.stack }];
  const others: Array<{ label: string; mode: ConsistencyMode; fsync: boolean }> = [
    { label: 'session', mode: 'session', fsync: fsyncMain },
    { label: 'eventual', mode: 'eventual', fsync: fsyncMain },
    ...(args.fsync === 'both' ? [{ label: 'strict, fsync off', mode: 'strict' as const, fsync: false }] : []),
  ];
  const stops = [main.stop];
  for (const o of others) {
    if (interrupted) return;
    const started = await startBenchStack({
      mode: o.mode,
      fsync: o.fsync,
      fronts: 2,
      catalogReplicas: 1,
      orderReplicas: 1,
    });
    stops.push(started.stop);
    purchaseTargets.push({ label: o.label, mode: o.mode, stack: started.stack });
  }
  const purchaseFigures = await purchases(purchaseTargets);
  for (const stop of stops) await stop();
  const modes = purchaseTargets.map((t) => ({
    label: t.label,
    mode: t.mode,
    figures: purchaseFigures.get(t.label)!,
  }));
  client.close();

  // ---- the table ----
  const ratio = fig.cached.rps / fig.baseline.rps;
  const c = (n: number, row: Row): Row => ({ ...row, connections: n });
  const rows: Row[] = [
    { section: 'Cached GET /info/:id vs a bare node:http server (same JSON, same run)' },
    c(CONNECTIONS, loadRow('bare node:http baseline', fig.baseline, '1.00x (the ceiling)')),
    c(
      CONNECTIONS,
      loadRow(
        'front, cache hit',
        fig.cached,
        `${ratio.toFixed(2)}x baseline (rounds ${fig.ratios.map((r) => r.toFixed(2)).join(' / ')})` +
          (fig.cached.cpuUsPerRequest && fig.baseline.cpuUsPerRequest
            ? `; CPU/req ${(fig.cached.cpuUsPerRequest / fig.baseline.cpuUsPerRequest).toFixed(2)}x`
            : ''),
      ),
    ),
    c(
      CONNECTIONS,
      loadRow(
        `bare node:http baseline, paced ${fig.pacedRate}/s`,
        fig.baselineRate,
        'paced, open loop: below saturation',
      ),
    ),
    c(
      CONNECTIONS,
      loadRow(
        `front, cache hit, paced ${fig.pacedRate}/s`,
        fig.cachedRate,
        'paced, open loop: below saturation',
      ),
    ),
    c(1, loadRow('bare node:http baseline', fig.baselineC1)),
    c(1, loadRow('front, cache hit', fig.cachedC1)),
    { section: 'Cache on vs off (Cache-Control: no-cache → front → catalog → Postgres)' },
    c(
      CONNECTIONS,
      loadRow(
        'front, cache off',
        fig.uncached,
        `${(fig.uncached.rps / fig.cached.rps).toFixed(2)}x cache on`,
      ),
    ),
    c(
      1,
      loadRow(
        'front, cache off',
        fig.uncachedC1,
        `${(p(fig.uncachedC1, 50) / p(fig.cachedC1, 50)).toFixed(1)}x cache-on p50`,
      ),
    ),
    { section: 'Purchase latency by consistency mode (POST /purchase/:id, books 1-7)' },
  ];
  const strictC1 = modes[0]!.figures.c1;
  for (const m of modes) {
    const rel = m === modes[0] ? '' : `p50 ${(p(m.figures.c1, 50) / p(strictC1, 50)).toFixed(2)}x strict`;
    rows.push(c(1, loadRow(`${m.label}`, m.figures.c1, rel)));
    rows.push(c(10, loadRow(`${m.label}`, m.figures.c10)));
  }
  rows.push({ section: 'The read after an invalidation (read → purchase → read → read, one client)' });
  for (const m of modes) {
    const mf = m.figures.miss;
    const fresh = m.mode === 'eventual' ? `; ${mf.stale}/${mf.probes} first reads stale` : '';
    rows.push(
      c(
        1,
        sampleRow(
          `${m.label}: first read (miss)`,
          mf.miss,
          `${mf.miss.length}/${mf.probes} missed${fresh}`,
          m.mode === 'eventual' ? 0 : mf.stale,
        ),
      ),
    );
    rows.push(c(1, sampleRow(`${m.label}: next read (hit)`, mf.hit)));
  }
  rows.push({ section: 'Invalidation fan-out to N fronts' });
  for (const m of modes) {
    const h = m.figures.fanout;
    rows.push({
      name: `${m.label}: order pod histogram, 2 fronts`,
      p50: quantile(h, 0.5) * 1000,
      p99: quantile(h, 0.99) * 1000,
      note: `${h.count} pushes, mean ${h.count > 0 ? ((h.sum / h.count) * 1000).toFixed(2) : '–'} ms (bucketed)`,
      errors: 0,
    });
  }
  for (const f of fig.fanoutDirect) {
    rows.push(
      sampleRow(
        `timed by the bench, ${f.n} front${f.n > 1 ? 's' : ''}`,
        f.samples,
        'POST /internal/invalidate to all, awaited',
      ),
    );
  }
  rows.push({
    section: 'Uncached reads as catalog replicas go 1 → 2 → 4 (one front, 2 cores: mostly overhead)',
  });
  const r1 = fig.replicas[0]!.result.rps;
  for (const r of fig.replicas) {
    rows.push(
      c(
        CONNECTIONS,
        loadRow(
          `${r.k} catalog replica${r.k > 1 ? 's' : ''}`,
          r.result,
          `${(r.result.rps / r1).toFixed(2)}x one replica`,
        ),
      ),
    );
  }

  const strictNoFsync = modes.find((m) => m.label === 'strict, fsync off')?.figures.c1;
  const allErrors = rows.reduce((a, r) => a + (r.errors ?? 0), 0) + probeErrors;
  const targets: Target[] = [
    {
      name: 'cached GET /info ≥ 0.6x the bare node:http baseline',
      value: `${ratio.toFixed(2)}x`,
      ok: ratio >= 0.6,
    },
    {
      name: `cached GET /info p99 < 2 ms at ${CONNECTIONS} connections`,
      value: `${p(fig.cached, 99).toFixed(2)} ms saturated (${p(fig.cachedRate, 99).toFixed(2)} ms paced at ${fig.pacedRate}/s)`,
      ok: p(fig.cached, 99) < 2,
    },
    {
      name: 'uncached read p50 < 2 ms (one client)',
      value: `${p(fig.uncachedC1, 50).toFixed(2)} ms`,
      ok: p(fig.uncachedC1, 50) < 2,
    },
    {
      name: 'strict purchase p50 < 5 ms (one client)',
      value:
        `${p(strictC1, 50).toFixed(2)} ms (fsync ${fsyncMain ? 'on' : 'off'})` +
        (strictNoFsync ? `; ${p(strictNoFsync, 50).toFixed(2)} ms with fsync off` : ''),
      ok: p(strictC1, 50) < 5,
    },
    { name: 'zero errors in every scenario', value: String(allErrors), ok: allErrors === 0 },
  ];
  const machine = {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    fdatasyncMs: Number(fsyncMs.toFixed(2)),
  };
  const meta = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    fsync: args.fsync,
    durationS: Math.round((Date.now() - t0) / 1000),
    machine,
  };
  process.stdout.write('\n' + renderText(rows, targets, meta) + '\n');

  // ---- files: results JSON, figures, and (with --docs) docs/performance.md ----
  const outDir = path.resolve(
    args.docs
      ? path.join(ROOT, 'docs', 'perf')
      : (args.out ?? path.join(ROOT, 'bench-results', meta.date.replace(/[:.]/g, '-'))),
  );
  await mkdir(outDir, { recursive: true });
  const results = {
    ...meta,
    rows,
    targets,
    baselineRatioRounds: fig.ratios,
  };
  const resultsFile = path.join(outDir, 'results.json');
  await writeFile(resultsFile, await pretty(resultsFile, JSON.stringify(results, null, 2) + '\n'));
  const figures = plots(fig, modes);
  for (const [name, svg] of Object.entries(figures)) await writeFile(path.join(outDir, name), svg);
  if (args.docs) {
    const doc = path.join(ROOT, 'docs', 'performance.md');
    const text = await readFile(doc, 'utf8');
    const start = '<!-- bench:results:start -->';
    const end = '<!-- bench:results:end -->';
    const a = text.indexOf(start);
    const b = text.indexOf(end);
    if (a < 0 || b < a) throw new Error(`${doc} has no ${start} … ${end} section`);
    const generated = renderMarkdown(
      rows,
      targets,
      meta,
      Object.keys(figures).map((f) => `perf/${f}`),
    );
    const updated = text.slice(0, a + start.length) + '\n' + generated + '\n' + text.slice(b);
    await writeFile(doc, await pretty(doc, updated));
    log(`updated ${path.relative(ROOT, doc)} and ${path.relative(ROOT, outDir)}/`);
  } else {
    log(`results and figures in ${path.relative(process.cwd(), outDir) || '.'}/`);
  }
}

/** Formats generated files the way the repository's Prettier config wants (when Prettier is installed). */
async function pretty(file: string, text: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...options, filepath: file });
  } catch {
    return text;
  }
}

function plots(
  fig: MainFigures,
  modes: Array<{ label: string; figures: PurchaseFigures }>,
): Record<string, string> {
  const ms = (r: LoadResult, q: number) => p(r, q);
  return {
    'throughput.svg': barChart({
      title: 'GET /info/:id throughput, 50 connections',
      subtitle: 'same run, same machine; autocannon on the same 2 cores as the servers',
      yLabel: 'requests per second',
      categories: [
        'bare node:http',
        'front, cache hit',
        'front, cache off',
        'cache off, 1 replica',
        'cache off, 2 replicas',
        'cache off, 4 replicas',
      ],
      series: [
        {
          name: 'req/s',
          values: [
            fig.baseline.rps,
            fig.cached.rps,
            fig.uncached.rps,
            ...fig.replicas.map((r) => r.result.rps),
          ],
        },
      ],
    }),
    'latency.svg': barChart({
      title: 'Read latency, one client',
      subtitle:
        'p50 and p99 (strict mode). First three: autocannon; miss and hit after it: a node:http client, timed per step',
      yLabel: 'milliseconds',
      categories: [
        'bare node:http',
        'cache hit',
        'cache off',
        'miss after invalidation',
        'hit after the miss',
      ],
      series: [50, 99].map((q) => ({
        name: `p${q}`,
        values: [
          ms(fig.baselineC1, q),
          ms(fig.cachedC1, q),
          ms(fig.uncachedC1, q),
          percentile(modes[0]!.figures.miss.miss.values(), q),
          percentile(modes[0]!.figures.miss.hit.values(), q),
        ],
      })),
    }),
    'consistency.svg': barChart({
      title: 'Purchase latency by consistency mode, one client',
      subtitle: 'POST /purchase/:id through the front; strict waits for the standby to apply the commit',
      yLabel: 'milliseconds',
      categories: modes.map((m) => m.label),
      series: [50, 99].map((q) => ({ name: `p${q}`, values: modes.map((m) => ms(m.figures.c1, q)) })),
    }),
    'fanout.svg': lineChart({
      title: 'Invalidation fan-out to N fronts',
      subtitle: 'POST /internal/invalidate to every front, awaited (timed by the bench)',
      xLabel: 'fronts',
      yLabel: 'milliseconds',
      xs: fig.fanoutDirect.map((f) => f.n),
      series: [50, 99].map((q) => ({
        name: `p${q}`,
        values: fig.fanoutDirect.map((f) => percentile(f.samples.values(), q)),
      })),
    }),
    'replicas.svg': lineChart({
      title: 'Uncached reads vs catalog replicas, 50 connections',
      subtitle: 'one front; on 2 cores more replicas add processes, not capacity',
      xLabel: 'catalog replicas',
      yLabel: 'requests per second',
      xs: fig.replicas.map((r) => r.k),
      series: [{ name: 'req/s', values: fig.replicas.map((r) => r.result.rps) }],
    }),
  };
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanup();
    process.exit(1);
  },
);
