/**
 * The systems one bench run measures, started in one step: the strict stack (npm start's shape with
 * two fronts) on its own Postgres pair; on that same pair the session and eventual stacks and a stack
 * with four catalog replicas (for the replica and fan-out figures); with --fsync both a strict stack on
 * a pair of its own with fsync off; and beside each stack compared with a floor, its bare chain.
 */
import { allSettled, type BenchRun } from './run.js';
import {
  NPM_START_SHAPE,
  startBenchStack,
  startChainFor,
  type BenchChain,
  type BenchStack,
} from './stacks.js';

export interface Systems {
  strict: BenchStack;
  /** Every stack whose purchases are measured, strict first, each with its chain. */
  purchasePairs: Array<{ label: string; bazar: BenchStack; chain: BenchChain }>;
  strictChain: BenchChain;
  replicas: BenchStack;
  stopAll(): Promise<void>;
}

export async function startSystems(run: BenchRun, opts: { fsync: 'on' | 'off' | 'both' }): Promise<Systems> {
  const fsyncMain = opts.fsync !== 'off';
  const shape = NPM_START_SHAPE;
  const strict = await startBenchStack(run, { label: 'strict', mode: 'strict', fsync: fsyncMain, ...shape });
  const pair = strict.pair;
  const [session, eventual, replicas, noFsync] = await allSettled([
    startBenchStack(run, { label: 'session', mode: 'session', fsync: fsyncMain, pair, ...shape }),
    startBenchStack(run, { label: 'eventual', mode: 'eventual', fsync: fsyncMain, pair, ...shape }),
    startBenchStack(run, {
      label: 'replicas',
      mode: 'strict',
      fsync: fsyncMain,
      pair,
      fronts: 1,
      catalogReplicas: 4,
      orderReplicas: 0,
    }),
    opts.fsync === 'both'
      ? startBenchStack(run, { label: 'strict, fsync off', mode: 'strict', fsync: false, ...shape })
      : Promise.resolve(undefined),
  ]);
  const stacks = [strict, session, eventual, ...(noFsync ? [noFsync] : [])];
  const chains = await allSettled(stacks.map((s) => startChainFor(run, s)));
  run.log(`${chains.length} bare chains up (${strict.stack.fronts.length} fronts each)`);
  return {
    strict,
    strictChain: chains[0]!,
    replicas,
    purchasePairs: stacks.map((s, i) => ({ label: s.label, bazar: s, chain: chains[i]! })),
    async stopAll() {
      for (const c of chains) await c.stop();
      await Promise.all([session, eventual, replicas, noFsync].map((s) => s?.stop()));
      await Promise.all([strict.stop(), noFsync?.stop()]);
    },
  };
}
