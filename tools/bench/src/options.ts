/** The bench's command line, parsed into what a run does (pure: no I/O, unit-tested). */
import { parseArgs } from 'node:util';

export const USAGE = `Usage: npm run bench -- [--quick] [--docs] [--out DIR] [--fsync on|off|both]
       npm run bench -- --profile cached|uncached|purchase [--seconds N] [--connections N]
                        [--mode strict|session|eventual] [--system bazar|chain] [--top N] [--out DIR]
                        [--fronts N]
       npm run bench -- --ladder [--rounds N] [--seconds N]
       npm run bench -- --live-cost [--rounds N] [--seconds N]
       npm run bench -- --tracing-cost [--rounds N] [--seconds N]
       npm run bench -- --generators [--rounds N] [--seconds N]
       npm run bench -- --books N [--quick] [--out DIR]
       npm run bench -- --fanout [--widths 1,2,4,8,16] [--quick] [--out DIR]

Starts Bazar locally and measures it with wrk against its floors (a bare node:http server, the bare
chains of node:http + pg) in the same run, and prints one table (see docs/performance.md).

  --load-generator wrk|autocannon   what drives the load (default wrk, one thread: apt-get install wrk);
              autocannon runs in the bench's own process and costs about as much CPU per request as the
              servers it loads, which moves every ratio toward 1 on two cores (docs/performance.md)

  --quick     shorter runs (about 2-3 minutes): a smoke check, not figures to quote
  --docs      also rewrite docs/performance.md's results section and docs/perf/*.svg (publish a full run)
  --out DIR   results directory (default bench-results/<time>/)
  --fsync     Postgres fsync: on (as npm start has it; the --quick default), off, or both (the full-run
              default: adds a strict purchase row with fsync off, on a pair of its own)
  --profile   drive one path for --seconds (default 20) with every service under V8's CPU profiler and
              print each process's top self-time items and time by package, beside its /proc CPU
              --fronts N: a store of N fronts, one catalog and one order (the fan-out shape), with
              only the order and the first two fronts profiled (purchases go through the first)
  --ladder    where a cached read's CPU goes: servers from bare node:http up to a real front, one piece
              more each, against the bare server on the same CPU at the same time (needs wrk, taskset)
  --live-cost what the fronts' live page costs: a front with it (nobody watching, then watched) against
              a front without it (LIVE_PAGE=false) in the same store, in alternating rounds
  --tracing-cost  what OpenTelemetry tracing costs when on: a store exporting every span to a real
              collector (bash scripts/otelcol.sh builds it) against the same store untraced, on one
              Postgres pair, in alternating rounds
  --generators  the uncached read and the strict purchase at 10 against their chains, under wrk and under
              autocannon in the same rounds: each side's CPU per request, the generator's own, and how
              many cores they kept busy, beside the ratios (why the two generators disagree)
  --books N   the bench at scale: a strict store and its bare chain on one Postgres pair seeded with N
              books (1 to 10,000,000; services/catalog/src/seed.ts): uncached reads, purchases at 1 and
              10 clients and a search page, random books and topics over all N, rounds interleaved
  --fanout    purchases in strict mode through one of F fronts, F in --widths (default 1,2,4,8,16,
              at most 32), stores interleaved; then the bare chain's awaited push beside a writer that
              NOTIFYs in its transaction (a prototype) and the delay until every listener has it
`;

/** What drives the load (load.ts). */
export type LoadGenerator = 'wrk' | 'autocannon';
export const LOAD_GENERATORS: readonly LoadGenerator[] = ['wrk', 'autocannon'];

export type ProfilePath = 'cached' | 'uncached' | 'purchase';
export const PROFILE_PATHS: readonly ProfilePath[] = ['cached', 'uncached', 'purchase'];

/** How long and how often each scenario runs. */
export interface Durations {
  /** Interleaved rounds of each read comparison. */
  rounds: number;
  /** Seconds per read round. */
  seconds: number;
  /** Seconds of the one-connection runs. */
  c1Seconds: number;
  /** Warm-up seconds per system before the rounds. */
  warmSeconds: number;
  purchaseRounds: number;
  /** Seconds per purchase round at 1 and 10 clients. */
  purchaseRoundSeconds: number;
  /**
   * At 50 clients: a round must last many times a purchase's latency, or the requests still in
   * flight when it ends (up to 50) are a large part of what it should have counted.
   */
  purchase50Seconds: number;
  /** Read → purchase → read → read probes per mode. */
  missProbes: number;
  /** Pushes timed per fan-out width. */
  fanoutProbes: number;
  /** Serial calls per client per round in the HTTP client measurement. */
  clientCalls: number;
  clientRounds: number;
}

export const QUICK: Durations = {
  rounds: 2,
  seconds: 1.5,
  c1Seconds: 1,
  warmSeconds: 1,
  purchaseRounds: 2,
  purchaseRoundSeconds: 1,
  purchase50Seconds: 1.5,
  missProbes: 30,
  fanoutProbes: 50,
  clientCalls: 300,
  clientRounds: 2,
};

export const FULL: Durations = {
  rounds: 5,
  seconds: 2.5,
  c1Seconds: 2.5,
  warmSeconds: 2,
  purchaseRounds: 4,
  purchaseRoundSeconds: 1.5,
  purchase50Seconds: 3,
  missProbes: 100,
  fanoutProbes: 200,
  clientCalls: 1000,
  clientRounds: 5,
};

export interface ProfileOptions {
  path: ProfilePath;
  seconds: number;
  connections: number | undefined;
  mode: 'strict' | 'session' | 'eventual';
  system: 'bazar' | 'chain';
  top: number;
  /** Set: a store of this many fronts (the fan-out shape), the order and the first two fronts profiled. */
  fronts?: number;
}

export interface LadderOptions {
  rounds: number;
  /** Seconds per round. */
  seconds: number;
}

export interface BenchOptions {
  help: boolean;
  quick: boolean;
  docs: boolean;
  out: string | undefined;
  fsync: 'on' | 'off' | 'both';
  durations: Durations;
  /** Set: run the profiler instead of the bench. */
  profile: ProfileOptions | undefined;
  /** Set: run the cached-read ladder (ladder.ts) instead of the bench. */
  ladder: LadderOptions | undefined;
  /** Set: measure the live page's cost (live-cost.ts) instead of the bench. */
  liveCost: LadderOptions | undefined;
  /** Set: measure tracing's cost (tracing-cost.ts) instead of the bench. */
  tracingCost: LadderOptions | undefined;
  /** Set: the same comparisons under wrk and under autocannon (generators.ts) instead of the bench. */
  generators: LadderOptions | undefined;
  /** Set: the bench at scale (scenarios/scale.ts) on tables of this many seeded books. */
  books: number | undefined;
  /** Set: fan-out at these widths (scenarios/fanout-scale.ts) instead of the bench. */
  fanout: { widths: number[] } | undefined;
  /** What drives the load (load.ts): wrk by default, autocannon to compare. */
  loadGenerator: LoadGenerator;
}

export const FANOUT_SCALE_WIDTHS: readonly number[] = [1, 2, 4, 8, 16];
export const MAX_FANOUT_WIDTH = 32;
export const MAX_BENCH_BOOKS = 10_000_000;

/** `1,2,4` → [1, 2, 4]: distinct integers from 1 to MAX_FANOUT_WIDTH, sorted. */
export function parseWidths(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const widths = parts.map((s) => (/^[0-9]+$/.test(s) ? Number(s) : NaN));
  if (parts.length === 0 || widths.some((w) => !Number.isInteger(w) || w < 1 || w > MAX_FANOUT_WIDTH))
    throw new UsageError(`--widths must be integers from 1 to ${MAX_FANOUT_WIDTH}, separated by commas`);
  return [...new Set(widths)].sort((a, b) => a - b);
}

export class UsageError extends Error {}

/**
 * A bench command's options from its command line: --help prints `usage` and exits 0; a UsageError
 * prints the message and `usage` and exits 2.
 */
export function optionsOrExit<T extends { help?: boolean }>(
  program: string,
  usage: string,
  parse: (argv: string[]) => T,
): T {
  try {
    const opts = parse(process.argv.slice(2));
    if (opts.help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return opts;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${program}: ${err.message}\n\n${usage}`);
    process.exit(2);
  }
}

function positive(value: string | undefined, what: string, dflt: number | undefined, max: number) {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new UsageError(`${what} must be an integer from 1 to ${max}`);
  return n;
}

function oneOf<T extends string>(value: string | undefined, what: string, allowed: readonly T[], dflt: T): T {
  if (value === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${what} must be one of ${allowed.join(', ')}`);
  return value as T;
}

export function parseOptions(argv: string[]): BenchOptions {
  let v;
  try {
    v = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean', default: false },
        docs: { type: 'boolean', default: false },
        out: { type: 'string' },
        fsync: { type: 'string' },
        profile: { type: 'string' },
        seconds: { type: 'string' },
        connections: { type: 'string' },
        mode: { type: 'string' },
        system: { type: 'string' },
        top: { type: 'string' },
        fronts: { type: 'string' },
        ladder: { type: 'boolean', default: false },
        'live-cost': { type: 'boolean', default: false },
        'tracing-cost': { type: 'boolean', default: false },
        generators: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        books: { type: 'string' },
        fanout: { type: 'boolean', default: false },
        widths: { type: 'string' },
        'load-generator': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const quick = v.quick === true;
  if (v.books !== undefined && v.fanout === true) throw new UsageError('--books or --fanout, not together');
  if (v.widths !== undefined && v.fanout !== true) throw new UsageError('--widths goes with --fanout');
  if ((v.books !== undefined || v.fanout === true) && v.docs)
    throw new UsageError(`${v.fanout === true ? '--fanout' : '--books'} writes its own results: no --docs`);
  const scale = v.books !== undefined || v.fanout === true;
  const fsync = oneOf(v.fsync, '--fsync', ['on', 'off', 'both'] as const, quick ? 'on' : 'both');
  const profileOnly = ['seconds', 'connections', 'mode', 'system', 'top', 'fronts'] as const;
  let profile: ProfileOptions | undefined;
  let ladder: LadderOptions | undefined;
  let liveCost: LadderOptions | undefined;
  let tracingCost: LadderOptions | undefined;
  let generators: LadderOptions | undefined;
  const roundsModes = (['ladder', 'live-cost', 'tracing-cost', 'generators'] as const).filter(
    (k) => v[k] === true,
  );
  if (scale && (roundsModes.length > 0 || v.profile !== undefined || v.rounds !== undefined))
    throw new UsageError(`${v.fanout === true ? '--fanout' : '--books'} runs on its own`);
  if (roundsModes.length > 1) {
    throw new UsageError(`${roundsModes.map((k) => `--${k}`).join(' or ')}, not together`);
  }
  if (roundsModes.length === 1) {
    const flag = `--${roundsModes[0]}`;
    if (v.profile !== undefined || v.docs || quick)
      throw new UsageError(`${flag} runs on its own: no --profile, --quick or --docs with it`);
    const stray = profileOnly.find((k) => k !== 'seconds' && v[k] !== undefined);
    if (stray) throw new UsageError(`--${stray} goes with --profile`);
    const rounds = {
      rounds: positive(v.rounds, '--rounds', 8, 100) as number,
      seconds: positive(v.seconds, '--seconds', 3, 60) as number,
    };
    if (v.ladder === true) ladder = rounds;
    else if (v['live-cost'] === true) liveCost = rounds;
    else if (v.generators === true) generators = rounds;
    else tracingCost = rounds;
  } else if (v.rounds !== undefined) {
    throw new UsageError('--rounds goes with --ladder, --live-cost, --tracing-cost or --generators');
  } else if (v.profile !== undefined) {
    if (v.docs || quick) throw new UsageError('--profile runs on its own: no --quick or --docs with it');
    profile = {
      path: oneOf(v.profile, '--profile', PROFILE_PATHS, 'cached'),
      seconds: positive(v.seconds, '--seconds', 20, 600) as number,
      connections: positive(v.connections, '--connections', undefined, 1000),
      mode: oneOf(v.mode, '--mode', ['strict', 'session', 'eventual'] as const, 'strict'),
      system: oneOf(v.system, '--system', ['bazar', 'chain'] as const, 'bazar'),
      top: positive(v.top, '--top', 12, 200) as number,
      ...(v.fronts !== undefined
        ? { fronts: positive(v.fronts, '--fronts', 2, MAX_FANOUT_WIDTH) as number }
        : {}),
    };
    if (profile.fronts !== undefined && profile.system !== 'bazar')
      throw new UsageError('--fronts profiles the store: not with --system chain');
  } else {
    const stray = profileOnly.find((k) => v[k] !== undefined);
    if (stray) throw new UsageError(`--${stray} goes with --profile`);
  }
  return {
    help: v.help === true,
    quick,
    docs: v.docs === true,
    out: v.out,
    fsync,
    durations: quick ? QUICK : FULL,
    profile,
    ladder,
    liveCost,
    tracingCost,
    generators,
    books: positive(v.books, '--books', undefined, MAX_BENCH_BOOKS),
    fanout:
      v.fanout === true ? { widths: v.widths ? parseWidths(v.widths) : [...FANOUT_SCALE_WIDTHS] } : undefined,
    loadGenerator: oneOf(v['load-generator'], '--load-generator', LOAD_GENERATORS, 'wrk'),
  };
}
