/**
 * `npm run bench -- --tracing-cost`: what OpenTelemetry tracing costs the requests when it is on. Two
 * stores on one Postgres pair, alike but for OTEL_EXPORTER_OTLP_ENDPOINT: every process of the second
 * exports its spans to a real OpenTelemetry Collector (scripts/otelcol.sh builds it). Each path is driven
 * through one store, then the other, in alternating rounds (drift on a shared machine hits both alike).
 * Figures: CPU per request of all the store's processes on the path (read from /proc around each run)
 * and throughput, as ratios of the traced store to the other, with the CPU difference in µs per request.
 * With tracing off the store pays nothing: that is what the main bench's ratios show, run for run.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { startCollector } from '../../otelcol/src/collector.js';
import { compare, formatRatio, type Comparison } from './compare.js';
import type { LoadSpec } from './load.js';
import type { LadderOptions } from './options.js';
import type { BenchRun } from './run.js';
import { BOOK_PATHS, interleaved, restockAll, warmCache } from './scenarios/common.js';
import { serviceWatch, startBenchStack, type BenchStack } from './stacks.js';

const PATHS = {
  cached: { connections: 50, method: 'GET' },
  uncached: { connections: 10, method: 'GET' },
  purchase: { connections: 4, method: 'POST' },
} as const;
type PathName = keyof typeof PATHS;

export async function runTracingCost(run: BenchRun, opts: LadderOptions): Promise<void> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-bench-otel-'));
  run.onExit(() => rm(workDir, { recursive: true, force: true }));
  const collector = await startCollector({ workDir });
  run.onExit(() => collector.stop());
  run.log(`OpenTelemetry Collector: ${collector.otlpHttpEndpoint} → ${collector.tracesFile}`);
  const shape = { mode: 'strict', fsync: false, fronts: 1, catalogReplicas: 1, orderReplicas: 1 } as const;
  const off = await startBenchStack(run, { ...shape, label: 'tracing off' });
  const on = await startBenchStack(run, {
    ...shape,
    label: 'tracing on',
    pair: off.pair,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.otlpHttpEndpoint },
  });
  for (const s of [off, on]) {
    const front = s.stack.fronts[0]!.url;
    await warmCache(run.client, front);
    await restockAll(run.client, front, s.stack.adminToken);
  }
  const durations = { rounds: opts.rounds, seconds: opts.seconds, warmSeconds: 1 };
  const spec = (s: BenchStack, name: PathName): LoadSpec => {
    const front = s.stack.fronts[0]!.url;
    const { connections, method } = PATHS[name];
    return {
      url: `${front}/info/1`,
      connections,
      method,
      paths: name === 'purchase' ? BOOK_PATHS('/purchase') : BOOK_PATHS('/info'),
      ...(name === 'uncached' ? { headers: { 'cache-control': 'no-cache' } } : {}),
      // Every process of the store: a traced request costs wherever it goes (the pair is shared).
      watch: serviceWatch(s.stack),
    };
  };
  const results: Comparison[] = [];
  for (const name of Object.keys(PATHS) as PathName[]) {
    const [a, b] = await interleaved(run, [spec(off, name), spec(on, name)], durations);
    const key = `${name}/${PATHS[name].connections}`;
    const c = compare(key, name, PATHS[name].connections, 'tracing off', a!, b!);
    results.push(c);
    run.log(
      `${key}: CPU/request ${c.ratios.cpu?.toFixed(3) ?? '–'}x, throughput ${formatRatio(c.ratios.rps, c.ratios.roundRps)}`,
    );
  }
  process.stdout.write(render(results, opts));
}

function render(results: Comparison[], opts: LadderOptions): string {
  const us = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(1));
  const rows = results.map((c) => {
    const before = c.floor.cpuUsPerRequest;
    const after = c.bazar.cpuUsPerRequest;
    const added = before !== undefined && after !== undefined ? after - before : undefined;
    return `| ${c.key.padEnd(14)} | ${us(before).padStart(9)} µs | ${us(after).padStart(9)} µs | ${us(added).padStart(8)} µs | ${(c.ratios.cpu?.toFixed(3) ?? '–').padStart(6)}x | ${formatRatio(c.ratios.rps, c.ratios.roundRps).padEnd(24)} |`;
  });
  return [
    '',
    `Tracing's cost: the same store with OTEL_EXPORTER_OTLP_ENDPOINT set (spans to a real collector) against it unset, ${opts.rounds} alternating rounds of ${opts.seconds} s; CPU of every service process per request`,
    '',
    '| path/conns     | CPU/req off  | CPU/req on   | added       | ratio   | throughput on/off        |',
    '| -------------- | ------------ | ------------ | ----------- | ------- | ------------------------ |',
    ...rows,
    '',
  ].join('\n');
}
