/**
 * Uncached reads against the bare chain: `Cache-Control: no-cache` makes every GET /info/:id (books 1–7
 * rotated) go front → catalog → Postgres, and the chain does the same hops with node:http + pg only
 * (front → catalog → SELECT on the standby). Rounds alternate chain, Bazar, chain, Bazar at 10
 * connections, then at one.
 */
import { compare, type Comparison } from '../compare.js';
import type { LoadSpec } from '../load.js';
import type { BenchRun } from '../run.js';
import type { BenchChain, BenchStack } from '../stacks.js';
import { BOOK_PATHS, interleaved } from './common.js';

export const UNCACHED_CONNECTIONS = 10;

export interface UncachedFigures {
  c10: Comparison;
  c1: Comparison;
}

export async function uncachedReads(
  run: BenchRun,
  target: BenchStack,
  chain: BenchChain,
): Promise<UncachedFigures> {
  const d = run.durations;
  const bazar: LoadSpec = {
    url: target.stack.fronts[0]!.url,
    connections: UNCACHED_CONNECTIONS,
    headers: { 'cache-control': 'no-cache' },
    paths: BOOK_PATHS('/info'),
    watch: target.watch,
  };
  const floor: LoadSpec = {
    url: chain.chain.fronts[0]!.url,
    connections: UNCACHED_CONNECTIONS,
    paths: BOOK_PATHS('/info'),
    watch: chain.watch,
  };
  const floorName = 'read chain';
  const [f10, b10] = await interleaved(run, [floor, bazar], d);
  const c10 = compare('uncached/10', 'uncached read', UNCACHED_CONNECTIONS, floorName, f10!, b10!);
  const [f1, b1] = await interleaved(
    run,
    [
      { ...floor, connections: 1 },
      { ...bazar, connections: 1 },
    ],
    { rounds: d.rounds, seconds: d.c1Seconds, warmSeconds: 0 },
  );
  const c1 = compare('uncached/1', 'uncached read', 1, floorName, f1!, b1!);
  run.log(
    `uncached read, ${UNCACHED_CONNECTIONS} conns: ${c10.bazar.rps.toFixed(0)}/s vs chain ${c10.floor.rps.toFixed(0)}/s ` +
      `(${c10.ratios.rps.toFixed(2)}x, p50 ${c10.ratios.p50.toFixed(2)}x); 1 conn p50 ${c1.ratios.p50.toFixed(2)}x`,
  );
  return { c10, c1 };
}
