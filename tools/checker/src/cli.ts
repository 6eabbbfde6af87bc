#!/usr/bin/env node
/**
 * The consistency checker's long mode: concurrent clients drive the store for a while (optionally
 * while faults are injected), every operation is recorded, and the history is checked against the
 * database. Exit 0 when the history is consistent, 1 with the violations, 2 on a usage error.
 *
 *   node dist/tools/checker/src/cli.js --duration 60s
 *   node dist/tools/checker/src/cli.js --duration 5m --clients 12 --mode session --chaos 5s
 *   node dist/tools/checker/src/cli.js --duration 2m --front http://127.0.0.1:8080 \
 *        --front http://127.0.0.1:8081 --database-url postgres://... --admin-token ...
 */
import { mkdtemp, rm, chmod, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startStack, type Stack } from '../../devstack/src/stack.js';
import { formatReport, measureStaleness, VIOLATION_KINDS, type ViolationKind } from './check.js';
import { setStock } from './db-facts.js';
import { checkedRun } from './run.js';
import type { FrontEndpoint } from './client.js';

const USAGE = `usage: cli.js [options]
  --duration <d>        how long the clients run (e.g. 30s, 5m, 500ms; default 60s)
  --clients <n>         concurrent clients (default 8)
  --books <ids>         books the run owns, comma-separated (default 1,2,3)
  --sellout-stock <n>   stock the last book starts with, so it sells out (default 40; 0 = leave stocks)
  --mode <m>            strict | session | eventual, for a store this command starts (default strict)
  --no-cache-ratio <r>  fraction of reads that bypass the front cache (default 0.3)
  --chaos <d>           every <d>, inject a fault into the store this command starts: kill and restart a
                        catalog replica, an order pod or a front, or pause standby replay for a second
  --front <url>         check a running store through this front (repeat for several) instead of
                        starting one; needs --database-url (the primary) and --admin-token for price changes
  --database-url <url>  the primary of that store
  --admin-token <t>     its admin token (default: no price changes)
  --set-stock           also reset the books' stock in that store before the run
  --json <file>         write the report and the full history there
  --keep-data           keep the data directory of the store this command starts`;

function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const n = Number(m[1]);
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        duration: { type: 'string', default: '60s' },
        clients: { type: 'string', default: '8' },
        books: { type: 'string', default: '1,2,3' },
        'sellout-stock': { type: 'string', default: '40' },
        mode: { type: 'string', default: 'strict' },
        'no-cache-ratio': { type: 'string', default: '0.3' },
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
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const durationMs = duration(args.duration);
  const clients = Number(args.clients);
  const books = args.books.split(',').map((b) => Number(b.trim()));
  const sellout = Number(args['sellout-stock']);
  const mode = args.mode as 'strict' | 'session' | 'eventual';
  if (!['strict', 'session', 'eventual'].includes(mode)) throw new Error(`--mode: ${mode}`);
  if (!Number.isInteger(clients) || clients < 1 || books.some((b) => !Number.isInteger(b) || b < 1)) {
    console.error(USAGE);
    return 2;
  }
  const external = (args.front ?? []).length > 0;
  if (external && !args['database-url']) {
    console.error('--front needs --database-url (the checker compares the history with the database)');
    return 2;
  }
  if (external && args.chaos) {
    console.error('--chaos works only on a store this command starts');
    return 2;
  }

  let stack: Stack | undefined;
  let dataDir: string | undefined;
  let fronts: FrontEndpoint[];
  let databaseUrl: string;
  let adminToken = args['admin-token'];
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (external) {
      fronts = (args.front ?? []).map((url, i) => ({ name: `front-${i}`, url: url.replace(/\/+$/, '') }));
      databaseUrl = args['database-url'] as string;
    } else {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-checker-'));
      await chmod(dataDir, 0o755);
      console.log(`starting a ${mode}-mode store in ${dataDir} ...`);
      stack = await startStack({
        dataDir,
        fronts: 2,
        catalogReplicas: 1,
        orderReplicas: 1,
        consistencyMode: mode,
        fsync: false,
        logLevel: 'warn',
        logDir: path.join(dataDir, 'logs'),
        env: { SYNC_COMMIT_TIMEOUT_MS: '500' },
        signal: abort.signal,
      });
      fronts = stack.fronts.map((f) => ({ name: f.name, url: f.url }));
      databaseUrl = stack.primaryUrl;
      adminToken = stack.adminToken;
    }
    const db = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    db.on('error', () => undefined);
    try {
      if (sellout > 0 && (!external || args['set-stock'])) {
        await setStock(db, new Map(books.map((b, i) => [b, i === books.length - 1 ? sellout : 1_000_000])));
      }
      const kinds: readonly ViolationKind[] =
        mode === 'eventual' && !external
          ? VIOLATION_KINDS.filter((k) => !['read-your-writes', 'monotonic-reads', 'stale-read'].includes(k))
          : VIOLATION_KINDS;
      const faults: string[] = [];
      console.log(
        `running ${clients} clients for ${args.duration} through ${fronts.map((f) => f.url).join(', ')} on books ${books.join(',')}` +
          (args.chaos ? `, a fault every ${args.chaos}` : ''),
      );
      let lastProgress = Date.now();
      const run = await checkedRun(
        {
          db,
          workload: {
            fronts,
            clients,
            books,
            adminToken,
            noCacheRatio: Number(args['no-cache-ratio']),
            onOp: () => {
              if (Date.now() - lastProgress > 10_000) {
                lastProgress = Date.now();
                process.stdout.write('.');
              }
            },
          },
          check: { kinds },
        },
        async () => {
          const end = Date.now() + durationMs;
          const wait = (ms: number) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, Math.max(0, ms));
              abort.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
            });
          if (!args.chaos || !stack) return wait(durationMs);
          const every = duration(args.chaos);
          for (let i = 0; Date.now() + every < end && !abort.signal.aborted; i++) {
            await wait(every);
            faults.push(await injectFault(stack, i));
          }
          await wait(end - Date.now());
        },
      );
      process.stdout.write('\n');
      const report = run.report;
      console.log(formatReport(report, run.t0));
      const failed = run.recorded.filter((o) => o.status !== 200 && o.error !== 'out_of_stock');
      console.log(
        `availability: ${run.recorded.length - failed.length}/${run.recorded.length} operations answered 200 or out_of_stock` +
          (failed.length ? ` (${summarize(failed.map((o) => `${o.status} ${o.error ?? ''}`.trim()))})` : '') +
          `; ${run.settled} unknown outcomes settled by key (${run.settledReplayed} had committed)`,
      );
      const stale = measureStaleness(run.history);
      if (stale.length > 0) {
        console.log(
          `staleness: ${stale.length} reads behind an acknowledged write, up to ${Math.max(...stale.map((s) => s.versionsBehind))} versions / ` +
            `${Math.max(...stale.map((s) => s.staleForMs)).toFixed(0)} ms${kinds.includes('stale-read') ? '' : ' (allowed in eventual mode)'}`,
        );
      }
      if (faults.length) console.log(`faults injected: ${faults.join('; ')}`);
      if (args.json) {
        await writeFile(
          args.json,
          JSON.stringify({ report, history: run.history, facts: serializeFacts(run.facts) }, null, 1),
        );
        console.log(`report and history written to ${args.json}`);
      }
      return report.ok ? 0 : 1;
    } finally {
      await db.end();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stack?.stop();
    if (dataDir && !args['keep-data']) await rm(dataDir, { recursive: true, force: true });
  }
}

/** One fault, chosen in turn: kill + restart a catalog replica, an order pod, a front; pause replay. */
async function injectFault(stack: Stack, i: number): Promise<string> {
  const t0 = Date.now();
  const kill = async (name: string) => {
    const p = stack.all.find((x) => x.name === name);
    if (!p) return `${name}: none`;
    await p.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    await p.start();
    return `killed ${name} (back in ${Date.now() - t0} ms)`;
  };
  switch (i % 4) {
    case 0:
      return kill('catalog-replica-0');
    case 1:
      return kill(i % 8 === 1 ? 'order-origin-0' : 'order-replica-0');
    case 2: {
      const client = new pg.Client({ connectionString: stack.standbyUrl });
      await client.connect();
      try {
        await client.query('SELECT pg_wal_replay_pause()');
        await new Promise((r) => setTimeout(r, 1000));
        await client.query('SELECT pg_wal_replay_resume()');
      } finally {
        await client.end();
      }
      return 'paused standby replay 1 s';
    }
    default:
      return kill('front-1');
  }
}

function summarize(items: string[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} × ${k}`).join(', ');
}

function serializeFacts(facts: {
  initial: Map<number, unknown>;
  final: Map<number, unknown>;
  orders: unknown[];
}) {
  return {
    initial: Object.fromEntries(facts.initial),
    final: Object.fromEntries(facts.final),
    orders: facts.orders,
  };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
