/**
 * What the checker's long mode is asked to do, read from its command line without side effects,
 * and the choices that follow from it (which rules apply, which stocks to set).
 */
import { parseArgs } from 'node:util';
import type { ConsistencyMode } from '../../devstack/src/stack.js';
import { kindsFor, type ViolationKind } from './check.js';
import type { FrontEndpoint } from './client.js';

export const USAGE = `usage: npm run checker -- [options]      (built: node dist/tools/checker/src/cli.js [options])

Drives a Bazar store with concurrent clients for a while (reads, keyed purchases, price changes, keyed
restocks), records every operation with its start and end, then checks the history against the
database by the rules of the consistency mode (docs/guarantees.md): no oversell; no order or restock
lost, doubled or invented; and the mode's promises about reads (strict: every read at least as new as
every write acknowledged and every read completed before it began; session: read-your-writes and
monotonic reads per client; eventual: none). Each violation is printed with the operations involved.
Without --front it starts a store of its own, as npm start does but in a temporary directory, and stops
it afterwards. With --front it checks a running store: for npm start's, pass the front, the primary's
URL and the admin token its banner prints.

options:
  --duration <d>        how long the clients run (e.g. 30s, 5m, 500ms; default 60s)
  --clients <n>         concurrent clients (default 8)
  --books <ids>         books the run owns, comma-separated (default 1,2,3)
  --sellout-stock <n>   stock the last book starts with, so it sells out (default 40; 0 = leave stocks)
  --mode <m>            strict | session | eventual (default strict): the mode of a store this command
                        starts, or the mode of the store given by --front; it decides the rules checked
                        (kindsFor in check.ts) and whether clients send X-Min-Version
  --no-cache-ratio <r>  fraction of reads that bypass the front cache (default 0.3)
  --min-version <w>     auto | on | off: send X-Min-Version (the newest version of the book the client
                        has seen) on every read; auto (default) = on in session mode only
  --chaos <d>           every <d>, inject a fault into the store this command starts: kill and restart a
                        catalog replica, an order pod or a front, or pause standby replay for a second
  --front <url>         check a running store through this front (repeat for several) instead of
                        starting one; needs --database-url (the primary) and --admin-token for price changes
  --database-url <url>  the primary of that store
  --admin-token <t>     its admin token (default: no price changes)
  --set-stock           also reset the books' stock in that store before the run
  --json <file>         write the report and the full history there
  --keep-data           keep the data directory of the store this command starts
  --help                this text

exit codes: 0 the history is consistent; 1 violations found (printed); 2 a usage error`;

/** A command line the checker refuses; the text is printed as it is. */
export class UsageError extends Error {}

export interface CheckerOptions {
  /** --duration as given (it is printed so) and in milliseconds. */
  duration: string;
  durationMs: number;
  clients: number;
  books: number[];
  selloutStock: number;
  mode: ConsistencyMode;
  noCacheRatio: number;
  /** --min-version: on / off, or undefined for auto (on in session mode). */
  minVersionHeader: boolean | undefined;
  /** --chaos as given; read as a duration when the first fault is due. */
  chaos: string | undefined;
  /** --front: check this running store instead of starting one (empty: start one). */
  externalFronts: FrontEndpoint[];
  databaseUrl: string | undefined;
  adminToken: string | undefined;
  setStock: boolean;
  json: string | undefined;
  keepData: boolean;
}

export function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const n = Number(m[1]);
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

/** Throws UsageError with the text to print (exit code 2). */
export function parseCheckerArgs(argv: string[]): CheckerOptions | 'help' {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        duration: { type: 'string', default: '60s' },
        clients: { type: 'string', default: '8' },
        books: { type: 'string', default: '1,2,3' },
        'sellout-stock': { type: 'string', default: '40' },
        mode: { type: 'string', default: 'strict' },
        'no-cache-ratio': { type: 'string', default: '0.3' },
        'min-version': { type: 'string', default: 'auto' },
        chaos: { type: 'string' },
        front: { type: 'string', multiple: true },
        'database-url': { type: 'string' },
        'admin-token': { type: 'string' },
        'set-stock': { type: 'boolean', default: false },
        json: { type: 'string' },
        'keep-data': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  if (args.help) return 'help';
  let durationMs: number;
  try {
    durationMs = duration(args.duration);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const clients = Number(args.clients);
  const books = args.books.split(',').map((b) => Number(b.trim()));
  const mode = args.mode as ConsistencyMode;
  if (!['strict', 'session', 'eventual'].includes(mode)) throw new UsageError(`--mode: ${mode}`);
  const minVersion = args['min-version'];
  if (!['auto', 'on', 'off'].includes(minVersion)) throw new UsageError(`--min-version: ${minVersion}`);
  if (!Number.isInteger(clients) || clients < 1 || books.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new UsageError(USAGE);
  }
  const externalFronts = (args.front ?? []).map((url, i) => ({
    name: `front-${i}`,
    url: url.replace(/\/+$/, ''),
  }));
  if (externalFronts.length > 0 && !args['database-url']) {
    throw new UsageError('--front needs --database-url (the checker compares the history with the database)');
  }
  if (externalFronts.length > 0 && args.chaos) {
    throw new UsageError('--chaos works only on a store this command starts');
  }
  return {
    duration: args.duration,
    durationMs,
    clients,
    books,
    selloutStock: Number(args['sellout-stock']),
    mode,
    noCacheRatio: Number(args['no-cache-ratio']),
    minVersionHeader: minVersion === 'auto' ? undefined : minVersion === 'on',
    chaos: args.chaos,
    externalFronts,
    databaseUrl: args['database-url'],
    adminToken: args['admin-token'],
    setStock: args['set-stock'],
    json: args.json,
    keepData: args['keep-data'],
  };
}

/**
 * The rules the store's mode promises (kindsFor): strict all, session all but real-time-read,
 * eventual none of the read rules. For a store given by --front, --mode says which mode it runs in.
 */
export function kindsToCheck(options: CheckerOptions): readonly ViolationKind[] {
  return kindsFor(options.mode);
}

/**
 * Stock to set before the run (undefined: leave it): plenty for every book but the last, which
 * sells out. A store that is not ours is touched only with --set-stock.
 */
export function startingStock(options: CheckerOptions): Map<number, number> | undefined {
  const { books, selloutStock } = options;
  if (!(selloutStock > 0 && (options.externalFronts.length === 0 || options.setStock))) return undefined;
  return new Map(books.map((b, i) => [b, i === books.length - 1 ? selloutStock : 1_000_000]));
}
