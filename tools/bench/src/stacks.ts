/**
 * The systems a bench run measures: Bazar stacks (one owns an embedded Postgres pair, the others run
 * on that same pair) and, beside each stack compared with its floor, a bare chain on the same pair
 * with as many fronts. Each knows the processes to charge CPU to (`watch`): its own and the pair's.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pgDataDirs } from '../../devstack/src/postgres-cluster.js';
import { startStack, type ConsistencyMode, type Stack, type StackOptions } from '../../devstack/src/stack.js';
import { postmasterOf, type Watched } from './cpu.js';
import { startBareChain, type BareChain } from './processes.js';
import type { BenchRun } from './run.js';

/** A Postgres primary + standby, as the processes to watch. */
export interface PgPair {
  primaryUrl: string;
  standbyUrl: string;
  watch: Watched[];
}

export interface BenchStack {
  label: string;
  mode: ConsistencyMode;
  fsync: boolean;
  stack: Stack;
  pair: PgPair;
  /** Every service process of the stack and the pair's two servers. */
  watch: Watched[];
  stop(): Promise<void>;
}

export interface StackSpec {
  label: string;
  mode: ConsistencyMode;
  fsync: boolean;
  fronts: number;
  catalogReplicas: number;
  orderReplicas: number;
  /** Run on this pair instead of starting one (its stack must outlive this one). */
  pair?: PgPair;
  /** Extra environment for every service process (the profiler's preload). */
  env?: Record<string, string>;
  /** Extra environment per process (the live page on one front only). */
  envFor?: StackOptions['envFor'];
  /** Books to seed beside the lab's seven (services/catalog/src/seed.ts), as npm start's --books. */
  books?: number;
}

function pairOf(dataDir: string, stack: Stack): PgPair {
  const dirs = pgDataDirs(path.join(dataDir, 'pg'));
  const watch = (['primary', 'standby'] as const).map((role): Watched => {
    const postmaster = postmasterOf(dirs[role]);
    return { name: `pg ${role}`, pgdata: dirs[role], ...(postmaster !== undefined ? { postmaster } : {}) };
  });
  return { primaryUrl: stack.primaryUrl, standbyUrl: stack.standbyUrl, watch };
}

/** `npm start`'s shape: two fronts, a catalog origin and replica, an order origin and replica. */
export const NPM_START_SHAPE = { fronts: 2, catalogReplicas: 1, orderReplicas: 1 } as const;

export function serviceWatch(stack: Stack): Watched[] {
  return stack.all.map((p) => ({ name: p.name, pid: () => p.pid() }));
}

/**
 * Starts a stack (and its Postgres pair unless `spec.pair`); stopped by the run's clean-up too. The
 * whole start is tracked, so a clean-up during it waits until what was started is gone again.
 */
export function startBenchStack(run: BenchRun, spec: StackSpec): Promise<BenchStack> {
  return run.track(startTracked(run, spec));
}

async function startTracked(run: BenchRun, spec: StackSpec): Promise<BenchStack> {
  run.checkpoint();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-bench-'));
  await chmod(dataDir, 0o755);
  const begun = Date.now();
  let stack: Stack;
  try {
    stack = await startStack({
      dataDir,
      signal: run.signal,
      reset: true,
      fsync: spec.fsync,
      consistencyMode: spec.mode,
      fronts: spec.fronts,
      catalogReplicas: spec.catalogReplicas,
      orderReplicas: spec.orderReplicas,
      logLevel: 'warn',
      logDir: path.join(dataDir, 'logs'),
      ...(spec.pair ? { databaseUrl: spec.pair.primaryUrl, replicaDatabaseUrl: spec.pair.standbyUrl } : {}),
      ...(spec.env ? { env: spec.env } : {}),
      ...(spec.envFor ? { envFor: spec.envFor } : {}),
      ...(spec.books ? { books: spec.books } : {}),
    });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const stop = run.onExit(async () => {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  const pair = spec.pair ?? pairOf(dataDir, stack);
  run.log(
    `${spec.label} stack up in ${((Date.now() - begun) / 1000).toFixed(1)} s (${spec.mode}, ` +
      `${spec.pair ? 'on the shared Postgres pair' : `own Postgres pair, fsync ${spec.fsync ? 'on' : 'off'}`}, ` +
      `${spec.fronts} front${spec.fronts > 1 ? 's' : ''}, catalog 1+${spec.catalogReplicas}, order 1+${spec.orderReplicas})`,
  );
  if (stack.seeded)
    run.log(
      `${spec.label}: ${stack.seeded.books} seeded books (${stack.seeded.inserted} inserted in ${(stack.seeded.ms / 1000).toFixed(1)} s)`,
    );
  return {
    label: spec.label,
    mode: spec.mode,
    fsync: spec.fsync,
    stack,
    pair,
    watch: [...serviceWatch(stack), ...pair.watch],
    stop,
  };
}

export interface BenchChain {
  label: string;
  chain: BareChain;
  synchronousCommit: 'remote_apply' | 'local';
  push: 'await' | 'background';
  watch: Watched[];
  stop(): Promise<void>;
}

/** What a mode's floor does: strict commits at remote_apply; every mode but eventual awaits the push. */
export function chainShape(mode: ConsistencyMode): {
  synchronousCommit: 'remote_apply' | 'local';
  push: 'await' | 'background';
} {
  return {
    synchronousCommit: mode === 'strict' ? 'remote_apply' : 'local',
    push: mode === 'eventual' ? 'background' : 'await',
  };
}

/** The bare chain matching `target`: its Postgres pair, its number of fronts, its mode's commit. */
export function startChainFor(
  run: BenchRun,
  target: BenchStack,
  env?: Record<string, string>,
  extra?: { fronts?: number; listen?: boolean; channel?: string },
): Promise<BenchChain> {
  return run.track(
    (async () => {
      run.checkpoint();
      const shape = chainShape(target.mode);
      const chain = await startBareChain({
        primaryUrl: target.pair.primaryUrl,
        standbyUrl: target.pair.standbyUrl,
        fronts: extra?.fronts ?? target.stack.fronts.length,
        ...shape,
        ...(extra?.listen ? { listen: true } : {}),
        ...(extra?.channel ? { channel: extra.channel } : {}),
        ...(env ? { env } : {}),
      });
      const stop = run.onExit(() => chain.stop());
      return {
        label: `${target.label} chain`,
        chain,
        ...shape,
        watch: [...chain.all.map((s) => ({ name: s.name, pid: () => s.pid })), ...target.pair.watch],
        stop,
      };
    })(),
  );
}
