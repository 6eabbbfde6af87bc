/**
 * Uncached reads as catalog replicas go 1 → 2 → 4: one extra front per size, each balancing over that
 * many replicas of a stack started with four, rounds interleaved. On one two-core machine replicas add
 * processes, not capacity; on a cluster each brings its own CPU.
 */
import type { LoadResult, LoadSpec } from '../load.js';
import { startFront, type Spawned } from '../processes.js';
import type { BenchRun } from '../run.js';
import type { BenchStack } from '../stacks.js';
import { BOOK_PATHS, interleaved } from './common.js';
import { UNCACHED_CONNECTIONS } from './uncached.js';

export const REPLICA_COUNTS = [1, 2, 4];

export interface ReplicaFronts {
  byCount: Map<number, Spawned>;
  stop(): Promise<void>;
}

/** One front per replica count, over the first k catalog replicas of `target`. */
export async function startReplicaFronts(run: BenchRun, target: BenchStack): Promise<ReplicaFronts> {
  const replicas = target.stack.catalogs.filter((c) => c.role === 'replica');
  const orders = target.stack.orders.map((o) => ({ name: o.name, url: o.url }));
  const byCount = new Map<number, Spawned>();
  const stop = run.onExit(async () => {
    await Promise.all([...byCount.values()].map((f) => f.stop()));
  });
  for (const k of REPLICA_COUNTS) {
    run.checkpoint();
    byCount.set(
      k,
      await startFront({
        name: `bench-front-r${k}`,
        catalogs: replicas.slice(0, k).map((c) => ({ name: c.name, url: c.url })),
        orders,
        adminToken: target.stack.adminToken,
        internalToken: target.stack.internalToken,
        mode: target.mode,
      }),
    );
  }
  return { byCount, stop };
}

export async function replicaScaling(
  run: BenchRun,
  target: BenchStack,
  fronts: ReplicaFronts,
): Promise<Array<{ k: number; result: LoadResult }>> {
  const catalogs = target.stack.catalogs.map((c) => ({ name: c.name, pid: () => c.pid() }));
  const specs = REPLICA_COUNTS.map((k): LoadSpec => ({
    url: fronts.byCount.get(k)!.url,
    connections: UNCACHED_CONNECTIONS,
    headers: { 'cache-control': 'no-cache' },
    paths: BOOK_PATHS('/info'),
    watch: [{ name: 'front', pid: () => fronts.byCount.get(k)!.pid }, ...catalogs, ...target.pair.watch],
  }));
  const results = await interleaved(run, specs, {
    rounds: Math.min(2, run.durations.rounds),
    seconds: run.durations.seconds,
    warmSeconds: 1,
  });
  const figures = REPLICA_COUNTS.map((k, i) => ({ k, result: results[i]!.pooled }));
  run.log(`replicas: ${figures.map((f) => `${f.k}: ${f.result.rps.toFixed(0)}/s`).join(', ')}`);
  return figures;
}
