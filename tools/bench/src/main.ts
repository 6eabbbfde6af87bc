/**
 * `npm run bench`: Bazar's performance, measured in one run on this machine against its floors.
 *
 *   node dist/tools/bench/src/main.js [--quick] [--docs] [--out DIR] [--fsync on|off|both]
 *   node dist/tools/bench/src/main.js --profile cached|uncached|purchase [--seconds N] ...
 *   node dist/tools/bench/src/main.js --books N | --fanout [--widths 1,2,4,8,16] [--quick] [--out DIR]
 *
 * Starts the store locally (embedded Postgres primary + hot standby, real service processes) and, on
 * the same Postgres pair, the bare chains (node:http + pg only); drives both with autocannon in
 * interleaved rounds and prints every Bazar path as a ratio to its floor, CPU per request for every
 * process on the path, what `got` costs per call against node:http, the rest of the figures (read
 * after an invalidation, fan-out, replicas) and the targets of issue 11, with the load average. With
 * --profile it profiles one path instead (profile.ts); with --ladder it splits a cached read's CPU into
 * what each piece of a front adds (ladder.ts). See docs/performance.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diskSyncMs } from './disk.js';
import { useLoadGenerator } from './load.js';
import { requireWrk } from './wrk.js';
import { optionsOrExit, parseOptions, USAGE, type BenchOptions } from './options.js';
import { pretty, writeResults } from './output.js';
import { plots } from './plots.js';
import { runLadder } from './ladder.js';
import { runLiveCost } from './live-cost.js';
import { runGeneratorComparison } from './generators.js';
import { runTracingCost } from './tracing-cost.js';
import { runProfile } from './profile.js';
import { fanoutJson, fanoutPlots, renderFanout, renderScale, scaleJson } from './scale-report.js';
import { runFanoutScale } from './scenarios/fanout-scale.js';
import { runScale } from './scenarios/scale.js';
import { renderText, type Meta } from './report.js';
import { BenchRun } from './run.js';
import { cachedReads } from './scenarios/cached.js';
import { timedFanout } from './scenarios/fanout.js';
import { httpClientCost } from './scenarios/http-client.js';
import { purchases } from './scenarios/purchases.js';
import { replicaScaling, startReplicaFronts } from './scenarios/replicas.js';
import { uncachedReads } from './scenarios/uncached.js';
import { buildReport, type BenchFigures } from './summary.js';
import { startSystems } from './systems.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function machine(loadBefore: number[], fdatasyncMs: number): Meta['machine'] {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadBefore,
    loadAfter: os.loadavg().map((l) => Number(l.toFixed(2))),
    fdatasyncMs: Number(fdatasyncMs.toFixed(2)),
  };
}

async function bench(run: BenchRun, opts: BenchOptions): Promise<void> {
  const loadBefore = os.loadavg().map((l) => Number(l.toFixed(2)));
  run.log(`load average ${loadBefore.join(' / ')} on ${os.availableParallelism()} CPUs`);
  const fdatasyncMs = await diskSyncMs();
  run.log(`disk: fdatasync of 8 KiB p50 ${fdatasyncMs.toFixed(2)} ms`);

  const systems = await startSystems(run, { fsync: opts.fsync });
  const clients = await httpClientCost(run);
  const cached = await cachedReads(run, systems.strict);
  const uncached = await uncachedReads(run, systems.strict, systems.strictChain);
  const replicaFronts = await startReplicaFronts(run, systems.replicas);
  const replicas = await replicaScaling(run, systems.replicas, replicaFronts);
  const fanout = await timedFanout(run, systems.replicas, [
    systems.replicas.stack.fronts[0]!.url,
    ...[...replicaFronts.byCount.values()].map((f) => f.url),
  ]);
  await replicaFronts.stop();
  await systems.replicas.stop();
  const bought = await purchases(run, systems.purchasePairs);
  await systems.stopAll();

  const figures: BenchFigures = {
    clients,
    cached,
    uncached,
    replicas,
    fanout,
    purchases: bought,
    probeErrors: run.probeErrors,
  };
  const meta: Meta = {
    date: new Date().toISOString(),
    mode: opts.quick ? 'quick' : 'full',
    fsync: opts.fsync,
    loadGenerator: opts.loadGenerator,
    durationS: Math.round((Date.now() - run.started) / 1000),
    machine: machine(loadBefore, fdatasyncMs),
  };
  const report = buildReport(figures, meta);
  process.stdout.write('\n' + renderText(report) + '\n');

  const outDir = path.resolve(
    opts.docs
      ? path.join(ROOT, 'docs', 'perf')
      : (opts.out ?? path.join(ROOT, 'bench-results', meta.date.replace(/[:.]/g, '-'))),
  );
  await writeResults({
    root: ROOT,
    outDir,
    docs: opts.docs,
    report,
    figures: plots(figures, report.comparisons),
  });
  run.log(
    opts.docs
      ? `updated docs/performance.md and ${path.relative(ROOT, outDir)}/`
      : `results and figures in ${path.relative(process.cwd(), outDir) || '.'}/`,
  );
}

/** --books N or --fanout: one scenario, its table on stdout, results.json (and figures) in --out. */
async function scaleBench(run: BenchRun, opts: BenchOptions): Promise<void> {
  const loadBefore = os.loadavg().map((l) => Number(l.toFixed(2)));
  run.log(`load average ${loadBefore.join(' / ')} on ${os.availableParallelism()} CPUs`);
  const fdatasyncMs = await diskSyncMs();
  const what = opts.fanout ? 'fanout' : `books-${opts.books}`;
  let text: string;
  let json: (meta: object) => object;
  let figures: Record<string, string> = {};
  if (opts.fanout) {
    const fig = await runFanoutScale(run, opts.fanout.widths);
    text = renderFanout(fig);
    json = (meta) => fanoutJson(fig, meta);
    figures = fanoutPlots(fig);
  } else {
    const fig = await runScale(run, opts.books!);
    text = renderScale(fig);
    json = (meta) => scaleJson(fig, meta);
  }
  const meta = {
    date: new Date().toISOString(),
    scenario: what,
    mode: opts.quick ? 'quick' : 'full',
    loadGenerator: opts.loadGenerator,
    durationS: Math.round((Date.now() - run.started) / 1000),
    durations: opts.durations,
    machine: machine(loadBefore, fdatasyncMs),
  };
  process.stdout.write('\n' + text + '\n');
  const outDir = path.resolve(
    opts.out ?? path.join(ROOT, 'bench-results', `${meta.date.replace(/[:.]/g, '-')}-${what}`),
  );
  await mkdir(outDir, { recursive: true });
  const body = JSON.stringify(json(meta), (k, v: unknown) => (k === 'latencies' ? undefined : v), 2);
  // Formatted as the repository's Prettier wants: the file is committed as docs/perf/*.json.
  const resultsFile = path.join(outDir, 'results.json');
  await writeFile(
    resultsFile,
    await pretty(resultsFile, body + '\n', path.join(ROOT, 'docs', 'perf', 'results.json')),
  );
  await writeFile(path.join(outDir, 'results.txt'), text + '\n');
  for (const [name, svg] of Object.entries(figures)) await writeFile(path.join(outDir, name), svg);
  run.log(`results in ${path.relative(process.cwd(), outDir) || '.'}/`);
}

/** Exit code: 0 done, 1 failed, 130 stopped by a signal; in every case after everything is stopped. */
async function main(): Promise<number> {
  const opts = optionsOrExit('bench', USAGE, parseOptions);
  const run = new BenchRun(opts.durations);
  run.trapSignals();
  try {
    useLoadGenerator(opts.loadGenerator);
    if (opts.loadGenerator === 'wrk') requireWrk();
    if (opts.profile) await runProfile(run, opts.profile, opts.out);
    else if (opts.ladder) await runLadder(run, opts.ladder);
    else if (opts.liveCost) await runLiveCost(run, opts.liveCost);
    else if (opts.tracingCost) await runTracingCost(run, opts.tracingCost);
    else if (opts.generators) await runGeneratorComparison(run, opts.generators);
    else if (opts.books !== undefined || opts.fanout) await scaleBench(run, opts);
    else await bench(run, opts);
    return 0;
  } catch (err) {
    if (run.interrupted) return 130;
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  } finally {
    await run.cleanup();
  }
}

void main().then((code) => process.exit(code));
