/** The command line of `npm run bench:hit-ratio`. */
import { UsageError } from '../options.js';

export const USAGE = `Usage: npm run bench:hit-ratio -- [options]

  --books N              catalogue size (default 1000000): the store's seeded books, ids 8 to N + 7
  --skew S[,S...]        Zipf skews (default 0.99,0.8)
  --sizes P[,P...]       cache sizes, % of the catalogue (default 0.1,0.2,0.5,1,2,5,10)
  --requests M           trace length (default 20 x the largest cache); the first half warms, the
                         second half is counted
  --seed S               PRNG seed (default 1)
  --front-sizes P[,P...] sizes measured on the real front (default: all; --quick: 0.1,1)
  --front-skews S[,S...] skews measured on the real front (default: all; --quick: 0.99)
  --front-requests R     counted requests per measured size (default 10000; --quick 5000)
  --concurrency K        connections replaying the trace to the front (default 8)
  --front-default-bytes  keep the front's default byte bound (CACHE_MAX_BYTES, 32 MiB: about 52,000
                         seeded books) instead of lifting it so that the entry count binds
  --no-front             simulations and the hit-path cost only: no store is started
  --quick                a short smoke run (see above)
  --docs                 also write docs/perf/hit-ratio.svg
  --out DIR              results directory (default bench-results/hit-ratio-<time>/)
`;

export interface HitRatioOptions {
  books: number;
  skews: number[];
  sizesPct: number[];
  requests: number;
  seed: number;
  frontSizesPct: number[];
  frontSkews: number[];
  frontRequests: number;
  concurrency: number;
  front: boolean;
  /** Keep the front's default byte bound instead of lifting it for each size. */
  frontDefaultBytes: boolean;
  quick: boolean;
  docs: boolean;
  out?: string;
  help: boolean;
}

const DEFAULT_SIZES = [0.1, 0.2, 0.5, 1, 2, 5, 10];

function numbers(flag: string, text: string | undefined, check: (n: number) => boolean): number[] {
  if (text === undefined || text === '') throw new UsageError(`${flag} needs a value`);
  const xs = text.split(',').map(Number);
  for (const x of xs)
    if (!Number.isFinite(x) || !check(x)) throw new UsageError(`${flag}: bad value in ${text}`);
  return xs;
}

function integer(flag: string, text: string | undefined, min: number, max: number): number {
  const [n] = numbers(flag, text, (x) => Number.isInteger(x) && x >= min && x <= max);
  return n as number;
}

export function parseOptions(argv: string[]): HitRatioOptions {
  const given = new Map<string, string | undefined>();
  const flags = new Set(['--front-default-bytes', '--no-front', '--quick', '--docs', '--help', '-h']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (flags.has(name)) {
      given.set(name, undefined);
      continue;
    }
    if (!name.startsWith('--')) throw new UsageError(`unexpected argument ${arg}`);
    given.set(name, eq > 0 ? arg.slice(eq + 1) : argv[++i]);
  }
  const known = [
    '--books',
    '--skew',
    '--sizes',
    '--requests',
    '--seed',
    '--front-sizes',
    '--front-skews',
    '--front-requests',
    '--concurrency',
    '--out',
    ...flags,
  ];
  for (const name of given.keys()) if (!known.includes(name)) throw new UsageError(`unknown option ${name}`);
  const has = (n: string) => given.has(n);
  const quick = has('--quick');
  const books = has('--books') ? integer('--books', given.get('--books'), 100, 10_000_000) : 1_000_000;
  const skews = has('--skew') ? numbers('--skew', given.get('--skew'), (x) => x > 0 && x <= 3) : [0.99, 0.8];
  const sizesPct = has('--sizes')
    ? numbers('--sizes', given.get('--sizes'), (x) => x > 0 && x <= 100)
    : DEFAULT_SIZES;
  const largest = Math.max(...sizesPct.map((p) => Math.round((books * p) / 100)));
  const requests = has('--requests')
    ? integer('--requests', given.get('--requests'), 100, 200_000_000)
    : Math.max(20 * largest, 100_000);
  const inList = (list: number[]) => (x: number) => list.includes(x);
  const frontSizesPct = has('--front-sizes')
    ? numbers('--front-sizes', given.get('--front-sizes'), inList(sizesPct))
    : quick
      ? sizesPct.filter((p) => p === 0.1 || p === 1)
      : sizesPct;
  const frontSkews = has('--front-skews')
    ? numbers('--front-skews', given.get('--front-skews'), inList(skews))
    : quick
      ? skews.slice(0, 1)
      : skews;
  const opts: HitRatioOptions = {
    books,
    skews,
    sizesPct: [...sizesPct].sort((a, b) => a - b),
    requests,
    seed: has('--seed') ? integer('--seed', given.get('--seed'), 0, 2 ** 31 - 1) : 1,
    frontSizesPct,
    frontSkews,
    frontRequests: has('--front-requests')
      ? integer('--front-requests', given.get('--front-requests'), 100, 10_000_000)
      : quick
        ? 5000
        : 10_000,
    concurrency: has('--concurrency') ? integer('--concurrency', given.get('--concurrency'), 1, 256) : 8,
    front: !has('--no-front'),
    frontDefaultBytes: has('--front-default-bytes'),
    quick,
    docs: has('--docs'),
    help: has('--help') || has('-h'),
  };
  if (has('--out')) {
    const out = given.get('--out');
    if (!out) throw new UsageError('--out needs a directory');
    opts.out = out;
  }
  if (opts.frontRequests > requests / 2) {
    throw new UsageError(`--front-requests ${opts.frontRequests} is more than the counted half of the trace`);
  }
  return opts;
}
