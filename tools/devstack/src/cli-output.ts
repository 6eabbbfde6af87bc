/** What `npm start` prints while it starts, runs and stops; pure, so its format is tested. */
import * as path from 'node:path';
import type { Invocation } from './cli-options.js';

/** What the ready banner shows of a started stack (a Stack fits). */
export interface StackSummary {
  all: readonly { name: string; url: string; pid(): number | undefined }[];
  fronts: readonly { name: string; url: string }[];
  pg?: unknown;
  /** What --books seeded (services/catalog/src/seed.ts SeedResult). */
  seeded?: { books: number; inserted: number; ms: number };
  primaryUrl: string;
  standbyUrl: string;
  adminToken: string;
  internalToken: string;
}

/** Relative to the cwd when inside it: shorter to read and to paste. */
export function display(p: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

export function startingMessage(inv: Invocation, cwd?: string): string {
  const o = inv.options;
  return (
    `Starting Bazar (${o.mode} mode, ${o.fronts} front(s), catalog 1+${o.catalogReplicas}, ` +
    `order 1+${o.orderReplicas})${inv.databaseUrl ? ' against DATABASE_URL' : ` with data in ${display(o.dataDir, cwd)}`}…\n`
  );
}

export function readyMessage(
  stack: StackSummary,
  inv: Invocation,
  logDir: string,
  elapsedMs: number,
  cwd?: string,
): string {
  const front = stack.fronts[0]?.url ?? '';
  const lines = [
    '',
    `Bazar is running — ready in ${(elapsedMs / 1000).toFixed(1)} s`,
    '',
    ...stack.all.map((p) => `  ${p.name.padEnd(20)} ${p.url.padEnd(24)} pid ${p.pid() ?? '?'}`),
    stack.pg
      ? `  ${'postgres'.padEnd(20)} primary ${new URL(stack.primaryUrl).port}, standby ${new URL(stack.standbyUrl).port} (${display(path.join(inv.options.dataDir, 'pg'), cwd)})`
      : `  ${'postgres'.padEnd(20)} external (DATABASE_URL${inv.replicaDatabaseUrl ? ', DATABASE_REPLICA_URL' : ''})`,
    '',
    `  Front:          ${stack.fronts.map((f) => f.url).join('  ')}`,
    `  Admin token:    ${stack.adminToken}   (also in ${display(path.join(inv.options.dataDir, 'admin-token'), cwd)})`,
    // For a person's own /internal/* calls and for the checker against this store.
    `  Internal token: ${stack.internalToken}`,
    // Where to look with psql (the embedded servers only: an external one's URL is the user's own).
    ...(stack.pg ? [`  Primary:        ${stack.primaryUrl}`, `  Standby:        ${stack.standbyUrl}`] : []),
    `  Logs:           ${display(logDir, cwd)}/<name>.log`,
    ...(stack.seeded ? [`  Books:          ${booksLine(stack.seeded)}`] : []),
    '',
    'Try:',
    `  curl -i ${front}/search/distributed%20systems`,
    `  curl -s '${front}/search/distributed%20systems?limit=2'   # a page; the next: ?limit=2&cursor=<its "next">`,
    `  curl -i ${front}/info/1`,
    `  curl -i -X POST ${front}/purchase/1`,
    `  curl -i -X PATCH ${front}/books/1 -H 'Authorization: Bearer ${stack.adminToken}' \\`,
    `       -H 'Content-Type: application/json' -d '{"price":42}'`,
    '',
    'Turn the knobs from another terminal (npm run ctl -- --help):',
    '  npm run ctl -- status',
    '  npm run ctl -- policy --mode eventual --cache-max 3',
    ...(stack.pg ? ['  npm run ctl -- lag 2000', '  npm run ctl -- stop primary'] : []),
    `  npm run ctl -- kill ${stack.fronts[0]?.name ?? 'front-0'}`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  return lines.join('\n');
}

/** What --books did: how many books the store holds, and how long seeding them took. */
function booksLine(seeded: { books: number; inserted: number; ms: number }): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const head = `${n(seeded.books + 7)}: the lab's 7 and ${n(seeded.books)} seeded`;
  if (seeded.inserted === 0) return `${head} earlier`;
  const now = seeded.inserted === seeded.books ? '' : ` (${n(seeded.inserted)} of them now)`;
  return `${head}${now}, in ${(seeded.ms / 1000).toFixed(1)} s`;
}

/**
 * The one line shown for a child's output while the store is up: Postgres progress, and a
 * service that died (the rest is in its log file). Undefined = not shown.
 */
export function childLine(
  proc: string,
  line: string,
  state: { up: boolean; logDir: string; cwd?: string },
): { stream: 'stdout' | 'stderr'; text: string } | undefined {
  if (proc === 'postgres' || proc === 'seed') return { stream: 'stdout', text: `  ${line}\n` };
  if (state.up && line.startsWith('--- exited')) {
    return {
      stream: 'stderr',
      text: `bazar: ${proc} ${line.replace(/^-+ | -+$/g, '')}; see ${display(state.logDir, state.cwd)}/${proc}.log\n`,
    };
  }
  return undefined;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
