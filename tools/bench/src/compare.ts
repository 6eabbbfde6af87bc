/**
 * Bazar against its floor, as ratios from the same run (pure: unit-tested). A floor is what the same
 * path costs with nothing but node:http (+ pg): the bare node:http server for cached reads, a bare
 * chain for uncached reads and purchases. The targets of issue 11 are stated as such ratios.
 */
import { p, type LoadResult } from './load.js';

/** What a comparison needs of a run (LoadResult has it; tests build it by hand). */
export interface Measured {
  rps: number;
  p50: number;
  p99: number;
  cpuUs: number | undefined;
  errors: number;
}

export function measured(r: LoadResult): Measured {
  return { rps: r.rps, p50: p(r, 50), p99: p(r, 99), cpuUs: r.cpuUsPerRequest, errors: errorsOf(r) };
}

export function errorsOf(r: { errors: number; timeouts: number; non2xx: number }): number {
  return r.errors + r.timeouts + r.non2xx;
}

export interface Ratios {
  /** Bazar's throughput over the floor's (higher is better; 1 = as fast as the floor). */
  rps: number;
  /** Bazar's p50 over the floor's (lower is better; 1 = as fast as the floor). */
  p50: number;
  p99: number;
  /** Bazar's CPU per request over the floor's (all processes on the path). */
  cpu: number | undefined;
  /** The throughput and p50 ratios of each interleaved round (a pair run minutes apart at most). */
  roundRps: number[];
  roundP50: number[];
}

const div = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !(b > 0) ? undefined : a / b;

/** Ratios of pooled figures, and per round (round i of Bazar against round i of the floor). */
export function ratios(
  floor: Measured,
  bazar: Measured,
  rounds: Array<{ floor: Measured; bazar: Measured }> = [],
): Ratios {
  return {
    rps: div(bazar.rps, floor.rps) ?? NaN,
    p50: div(bazar.p50, floor.p50) ?? NaN,
    p99: div(bazar.p99, floor.p99) ?? NaN,
    cpu: div(bazar.cpuUs, floor.cpuUs),
    roundRps: rounds.map((r) => div(r.bazar.rps, r.floor.rps) ?? NaN),
    roundP50: rounds.map((r) => div(r.bazar.p50, r.floor.p50) ?? NaN),
  };
}

/** One path of Bazar beside its floor. */
export interface Comparison {
  /** Stable key: `cached/50`, `uncached/10`, `purchase strict/1`, ... */
  key: string;
  /** Printed name of the path. */
  path: string;
  connections: number;
  /** What the floor is (`bare node:http`, `chain, remote_apply, push awaited`). */
  floorName: string;
  floor: LoadResult;
  bazar: LoadResult;
  ratios: Ratios;
}

export function compare(
  key: string,
  path: string,
  connections: number,
  floorName: string,
  floorRuns: { runs: LoadResult[]; pooled: LoadResult },
  bazarRuns: { runs: LoadResult[]; pooled: LoadResult },
): Comparison {
  const rounds = floorRuns.runs.map((f, i) => ({
    floor: measured(f),
    bazar: measured(bazarRuns.runs[i] ?? bazarRuns.pooled),
  }));
  return {
    key,
    path,
    connections,
    floorName,
    floor: floorRuns.pooled,
    bazar: bazarRuns.pooled,
    ratios: ratios(measured(floorRuns.pooled), measured(bazarRuns.pooled), rounds),
  };
}

/** "0.31x", or "0.31x (0.28–0.35)": the pooled ratio and the range of the rounds' ratios. */
export function formatRatio(pooled: number, rounds: number[] = []): string {
  const finite = rounds.filter(Number.isFinite);
  if (!Number.isFinite(pooled)) return '–';
  if (finite.length < 2) return `${pooled.toFixed(2)}x`;
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  return `${pooled.toFixed(2)}x (${lo.toFixed(2)}–${hi.toFixed(2)})`;
}

export interface Target {
  name: string;
  value: string;
  ok: boolean;
}

/** The thresholds of issue 11 item 2: ratios to the floor measured in the same run. */
export const THRESHOLDS = {
  uncachedRps: 0.5,
  uncachedP50: 2,
  strictC1P50: 2,
  strictC10Rps: 0.5,
  cachedRps: 0.9,
} as const;

function target(
  name: string,
  c: Comparison | undefined,
  pick: 'rps' | 'p50',
  ok: (r: number) => boolean,
): Target {
  if (!c) return { name, value: 'not measured', ok: false };
  const r = c.ratios[pick];
  const [b, f] =
    pick === 'rps'
      ? [`${c.bazar.rps.toFixed(0)}/s`, `${c.floor.rps.toFixed(0)}/s`]
      : [`${p(c.bazar, 50).toFixed(2)} ms`, `${p(c.floor, 50).toFixed(2)} ms`];
  const rounds = pick === 'rps' ? c.ratios.roundRps : c.ratios.roundP50;
  return { name, value: `${formatRatio(r, rounds)}: ${b} vs ${f}`, ok: Number.isFinite(r) && ok(r) };
}

/** The targets as MET/MISSED with this run's values; a comparison missing from the run is MISSED. */
export function targets(byKey: Map<string, Comparison>, errors: number): Target[] {
  const t = THRESHOLDS;
  return [
    target(
      `uncached read, 10 conns: ≥ ${t.uncachedRps}x the chain's throughput`,
      byKey.get('uncached/10'),
      'rps',
      (r) => r >= t.uncachedRps,
    ),
    target(
      `uncached read, 10 conns: p50 ≤ ${t.uncachedP50}x the chain's`,
      byKey.get('uncached/10'),
      'p50',
      (r) => r <= t.uncachedP50,
    ),
    target(
      `strict purchase, 1 client: p50 ≤ ${t.strictC1P50}x the chain's`,
      byKey.get('purchase strict/1'),
      'p50',
      (r) => r <= t.strictC1P50,
    ),
    target(
      `strict purchase, 10 clients: ≥ ${t.strictC10Rps}x the chain's throughput`,
      byKey.get('purchase strict/10'),
      'rps',
      (r) => r >= t.strictC10Rps,
    ),
    target(
      `cached read, 50 conns: ≥ ${t.cachedRps}x bare node:http`,
      byKey.get('cached/50'),
      'rps',
      (r) => r >= t.cachedRps,
    ),
    { name: 'zero errors in every scenario', value: String(errors), ok: errors === 0 },
  ];
}
