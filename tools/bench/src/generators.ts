/**
 * `npm run bench -- --generators`: the same comparisons driven by both load generators, so that the
 * bench's method can be checked against an independent one in one run. A strict store (npm start's
 * shape) and its bare chain on one Postgres pair; uncached reads at 10 connections and strict purchases
 * at 10 clients; every round runs floor and Bazar under wrk, then under autocannon (drift hits all
 * four alike). Beside the ratios it prints what explains them: each side's CPU per request (every
 * process on the path, from /proc), the load generator's own CPU per request, and how many of the
 * machine's cores the servers and the generator kept busy together.
 */
import os from 'node:os';
import { compare, formatRatio, type Comparison } from './compare.js';
import { load, pool, useLoadGenerator, type LoadResult, type LoadSpec } from './load.js';
import type { LadderOptions, LoadGenerator } from './options.js';
import { markdownTable, num, throughputAndLatencyCells, type Table } from './report.js';
import type { BenchRun } from './run.js';
import { BOOK_PATHS, restockAll, type Rounds } from './scenarios/common.js';
import { UNCACHED_CONNECTIONS } from './scenarios/uncached.js';
import { NPM_START_SHAPE, startBenchStack, startChainFor } from './stacks.js';

const GENERATORS: readonly LoadGenerator[] = ['wrk', 'autocannon'];
const PURCHASE_CLIENTS = 10;

export interface GeneratorRow {
  generator: LoadGenerator;
  comparison: Comparison;
}

/** Cores kept busy by the servers on the path and the generator together: CPU per request × rate. */
export function coresBusy(r: LoadResult): number | undefined {
  if (r.cpuUsPerRequest === undefined) return undefined;
  return ((r.cpuUsPerRequest + (r.generatorCpuUsPerRequest ?? 0)) * r.rps) / 1e6;
}

/**
 * The throughput ratio the CPU figures predict if the machine's cores are the bottleneck: each side's
 * rate is then the cores over (its servers' CPU + the generator's CPU) per request.
 */
export function cpuBoundRatio(floor: LoadResult, bazar: LoadResult): number | undefined {
  if (floor.cpuUsPerRequest === undefined || bazar.cpuUsPerRequest === undefined) return undefined;
  return (
    (floor.cpuUsPerRequest + (floor.generatorCpuUsPerRequest ?? 0)) /
    (bazar.cpuUsPerRequest + (bazar.generatorCpuUsPerRequest ?? 0))
  );
}

export async function runGeneratorComparison(run: BenchRun, opts: LadderOptions): Promise<GeneratorRow[]> {
  const strict = await startBenchStack(run, {
    label: 'strict',
    mode: 'strict',
    fsync: true,
    ...NPM_START_SHAPE,
  });
  const chain = await startChainFor(run, strict);
  await restockAll(run.client, strict.stack.fronts[0]!.url, strict.stack.adminToken);
  const paths: Array<{
    key: string;
    path: string;
    connections: number;
    floor: LoadSpec;
    bazar: LoadSpec;
    floorName: string;
  }> = [
    {
      key: 'uncached/10',
      path: 'uncached read',
      connections: UNCACHED_CONNECTIONS,
      floorName: 'read chain',
      floor: {
        url: chain.chain.fronts[0]!.url,
        connections: UNCACHED_CONNECTIONS,
        paths: BOOK_PATHS('/info'),
        watch: chain.watch,
      },
      bazar: {
        url: strict.stack.fronts[0]!.url,
        connections: UNCACHED_CONNECTIONS,
        headers: { 'cache-control': 'no-cache' },
        paths: BOOK_PATHS('/info'),
        watch: strict.watch,
      },
    },
    {
      key: 'purchase strict/10',
      path: 'strict purchase',
      connections: PURCHASE_CLIENTS,
      floorName: 'chain, remote_apply',
      floor: {
        url: chain.chain.fronts[0]!.url,
        connections: PURCHASE_CLIENTS,
        method: 'POST',
        paths: BOOK_PATHS('/purchase'),
        watch: chain.watch,
      },
      bazar: {
        url: strict.stack.fronts[0]!.url,
        connections: PURCHASE_CLIENTS,
        method: 'POST',
        paths: BOOK_PATHS('/purchase'),
        watch: strict.watch,
      },
    },
  ];
  const rows: GeneratorRow[] = [];
  try {
    for (const path of paths) {
      for (const generator of GENERATORS) {
        useLoadGenerator(generator);
        for (const spec of [path.floor, path.bazar]) await load({ ...spec, duration: 2, watch: [] });
      }
      const runs = new Map(
        GENERATORS.map((g) => [g, { floor: [] as LoadResult[], bazar: [] as LoadResult[] }]),
      );
      for (let r = 0; r < opts.rounds; r++) {
        for (const generator of GENERATORS) {
          useLoadGenerator(generator);
          for (const side of ['floor', 'bazar'] as const) {
            run.checkpoint();
            runs.get(generator)![side].push(await load({ ...path[side], duration: opts.seconds }));
          }
        }
      }
      for (const generator of GENERATORS) {
        const sides = runs.get(generator)!;
        const rounds = (list: LoadResult[]): Rounds => ({ runs: list, pooled: pool(list) });
        const comparison = compare(
          path.key,
          path.path,
          path.connections,
          path.floorName,
          rounds(sides.floor),
          rounds(sides.bazar),
        );
        rows.push({ generator, comparison });
        run.log(
          `${path.key} under ${generator}: ${formatRatio(comparison.ratios.rps, comparison.ratios.roundRps)}`,
        );
      }
    }
  } finally {
    useLoadGenerator('wrk');
    await chain.stop();
    await strict.stop();
  }
  process.stdout.write(renderGenerators(rows, opts));
  return rows;
}

export function renderGenerators(rows: GeneratorRow[], opts: LadderOptions): string {
  const table: Table = {
    head: [
      'path',
      'generator',
      'floor req/s',
      'Bazar req/s',
      'req/s ratio (rounds)',
      'floor p50 ms',
      'Bazar p50 ms',
      'p50 ratio',
      'floor CPU µs/req',
      'Bazar CPU µs/req',
      'generator µs/req (floor · Bazar)',
      'cores busy (floor · Bazar)',
      'ratio the CPU predicts',
    ],
    right: [false, false, true, true, false, true, true, false, true, true, true, true, true],
    rows: rows.map(({ generator, comparison: c }) => {
      const predicted = cpuBoundRatio(c.floor, c.bazar);
      return [
        `${c.path}, ${c.connections}`,
        generator,
        ...throughputAndLatencyCells(c),
        num(c.floor.cpuUsPerRequest, 0),
        num(c.bazar.cpuUsPerRequest, 0),
        `${num(c.floor.generatorCpuUsPerRequest, 0)} · ${num(c.bazar.generatorCpuUsPerRequest, 0)}`,
        `${num(coresBusy(c.floor), 2)} · ${num(coresBusy(c.bazar), 2)}`,
        predicted === undefined ? '–' : `${predicted.toFixed(2)}x`,
      ];
    }),
  };
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
  return [
    '',
    `Load generators side by side: ${opts.rounds} rounds of ${opts.seconds} s, each round floor and Bazar under wrk, then under autocannon (${os.availableParallelism()} CPUs; load average ${load})`,
    '',
    ...markdownTable(table),
    '',
  ].join('\n');
}
