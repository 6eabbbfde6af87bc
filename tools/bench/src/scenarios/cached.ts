/**
 * Cached reads: GET /info/1 through a front (a cache hit) against the bare node:http server returning
 * the same JSON bytes (the ceiling for any Node front), in alternating rounds at 50 connections; then
 * one connection each, and both paced below saturation (open loop) for latency without the queue.
 */
import { compare, type Comparison } from '../compare.js';
import { paced, type LoadResult, type LoadSpec } from '../load.js';
import { startBaseline } from '../processes.js';
import type { BenchRun } from '../run.js';
import type { BenchStack } from '../stacks.js';
import { interleaved, warmCache } from './common.js';

export const CACHED_CONNECTIONS = 50;
/** The paced rate: a quarter of the baseline's saturated throughput in this run, at most this. */
const MAX_PACED_RATE = 5000;

export interface CachedFigures {
  c50: Comparison;
  c1: Comparison;
  pacedRate: number;
  baselinePaced: LoadResult;
  cachedPaced: LoadResult;
}

export async function cachedReads(run: BenchRun, target: BenchStack): Promise<CachedFigures> {
  const d = run.durations;
  const front = target.stack.fronts[0]!;
  await warmCache(run.client, front.url);
  const body = (await run.client.request(`${front.url}/info/1`)).body;
  const baseline = await startBaseline(body);
  const stopBaseline = run.onExit(() => baseline.stop());
  try {
    const baseSpec: LoadSpec = {
      url: `${baseline.url}/info/1`,
      connections: CACHED_CONNECTIONS,
      watch: [{ name: 'baseline', pid: () => baseline.pid }],
    };
    const cachedSpec: LoadSpec = {
      url: `${front.url}/info/1`,
      connections: CACHED_CONNECTIONS,
      watch: target.watch,
    };
    const [base50, cached50] = await interleaved(run, [baseSpec, cachedSpec], d);
    const c50 = compare('cached/50', 'cached read', CACHED_CONNECTIONS, 'bare node:http', base50!, cached50!);
    run.log(
      `cached read, ${CACHED_CONNECTIONS} conns: ${c50.bazar.rps.toFixed(0)}/s vs bare node:http ` +
        `${c50.floor.rps.toFixed(0)}/s (${c50.ratios.rps.toFixed(2)}x)`,
    );
    const [base1, cached1] = await interleaved(
      run,
      [
        { ...baseSpec, connections: 1 },
        { ...cachedSpec, connections: 1 },
      ],
      { rounds: d.rounds, seconds: d.c1Seconds, warmSeconds: 0 },
    );
    const c1 = compare('cached/1', 'cached read', 1, 'bare node:http', base1!, cached1!);
    const pacedRate = Math.max(100, Math.min(MAX_PACED_RATE, Math.round(c50.floor.rps / 4 / 100) * 100));
    const pacedSpec = { connections: CACHED_CONNECTIONS, rate: pacedRate, seconds: d.c1Seconds };
    const baselinePaced = await paced({ ...pacedSpec, url: baseSpec.url, watch: baseSpec.watch ?? [] });
    const cachedPaced = await paced({ ...pacedSpec, url: cachedSpec.url, watch: target.watch });
    return { c50, c1, pacedRate, baselinePaced, cachedPaced };
  } finally {
    await stopBaseline();
  }
}
