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
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startStack, type Stack } from '../../devstack/src/stack.js';
import { formatReport, measureStaleness, type ViolationKind } from './check.js';
import {
  duration,
  kindsToCheck,
  parseCheckerArgs,
  startingStock,
  USAGE,
  UsageError,
  type CheckerOptions,
} from './cli-options.js';
import { availabilityLine, jsonReport, runningLine, stalenessLine } from './cli-output.js';
import type { FrontEndpoint } from './client.js';
import { setStock } from './db-facts.js';
import { checkedRun, type CheckedRun } from './run.js';
import { watchDegradation } from './degradation.js';

/** One run of the command; what it started is recorded here as it goes, so that it is cleaned up. */
interface Session {
  options: CheckerOptions;
  abort: AbortController;
  stack?: Stack;
  dataDir?: string;
}

/** The store under check: where its fronts and its primary are, and the token for price changes. */
interface Target {
  fronts: FrontEndpoint[];
  databaseUrl: string;
  adminToken: string | undefined;
  /** Set when this command started the store (faults can be injected into it). */
  stack?: Stack;
}

async function main(): Promise<number> {
  const options = readCommandLine(process.argv.slice(2));
  if (typeof options === 'number') return options;
  const session: Session = { options, abort: new AbortController() };
  const onSignal = () => session.abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const target = await openTarget(session);
    return await checkStore(session, target);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanUp(session);
  }
}

/** The options, or the exit code when there is nothing to run: 2 for a usage error, 0 for --help. */
function readCommandLine(argv: string[]): CheckerOptions | number {
  let options: CheckerOptions | 'help';
  try {
    options = parseCheckerArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(err.message);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  return options;
}

/** The store given by --front, or a fresh one started here in a temporary directory. */
async function openTarget(session: Session): Promise<Target> {
  const { options } = session;
  if (options.externalFronts.length > 0) {
    return {
      fronts: options.externalFronts,
      databaseUrl: options.databaseUrl as string,
      adminToken: options.adminToken,
    };
  }
  session.dataDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-checker-'));
  await chmod(session.dataDir, 0o755);
  console.log(`starting a ${options.mode}-mode store in ${session.dataDir} ...`);
  const stack = await startStack({
    dataDir: session.dataDir,
    fronts: 2,
    catalogReplicas: 1,
    orderReplicas: 1,
    consistencyMode: options.mode,
    fsync: false,
    logLevel: 'warn',
    logDir: path.join(session.dataDir, 'logs'),
    env: { SYNC_COMMIT_TIMEOUT_MS: String(SYNC_COMMIT_TIMEOUT_MS) },
    signal: session.abort.signal,
  });
  session.stack = stack;
  return {
    fronts: stack.fronts.map((f) => ({ name: f.name, url: f.url })),
    databaseUrl: stack.primaryUrl,
    adminToken: stack.adminToken,
    stack,
  };
}

/** Sets the stock, runs the clients (and faults), prints the report; the exit code says whether it holds. */
async function checkStore(session: Session, target: Target): Promise<number> {
  const { options } = session;
  const db = new pg.Pool({ connectionString: target.databaseUrl, max: 4 });
  db.on('error', () => undefined);
  try {
    const stock = startingStock(options);
    if (stock) await setStock(db, stock);
    const kinds = kindsToCheck(options);
    const faults: string[] = [];
    console.log(runningLine(options, target.fronts));
    // A store started here: record when its strict writes were degraded (the checker's nemesis).
    const writers = target.stack
      ? [...target.stack.orders, ...target.stack.catalogs.filter((c) => c.role === 'origin')]
      : [];
    const degradation = watchDegradation(writers, SYNC_COMMIT_TIMEOUT_MS);
    const run = await checkedRun(
      {
        db,
        workload: {
          fronts: target.fronts,
          clients: options.clients,
          books: options.books,
          adminToken: target.adminToken,
          noCacheRatio: options.noCacheRatio,
          ...(options.minVersionHeader !== undefined ? { minVersionHeader: options.minVersionHeader } : {}),
          onOp: progressDots(),
        },
        mode: options.mode,
        check: { kinds, degraded: degradation.intervals },
      },
      async () => {
        try {
          await runFor(session, target.stack, faults);
        } finally {
          await degradation.stop();
        }
      },
    );
    if (degradation.intervals.length > 0) {
      const total = degradation.intervals.reduce((sum, d) => sum + (d.to - d.from), 0);
      console.log(
        `strict writes degraded ${degradation.intervals.length} times, ${(total / 1000).toFixed(1)} s in all (reads across those stretches are not held to real-time-read)`,
      );
    }
    process.stdout.write('\n');
    printReport(run, kinds, faults);
    if (options.json) {
      await writeFile(options.json, jsonReport(run));
      console.log(`report and history written to ${options.json}`);
    }
    return run.report.ok ? 0 : 1;
  } finally {
    await db.end();
  }
}

/** A dot every 10 s or so, so that a long run shows it is alive. */
function progressDots(): () => void {
  let lastProgress = Date.now();
  return () => {
    if (Date.now() - lastProgress > 10_000) {
      lastProgress = Date.now();
      process.stdout.write('.');
    }
  };
}

/**
 * The store this command starts commits strictly for at most this long before a write degrades: the
 * 1 s replay pause of --chaos degrades strict writes on purpose (watchDegradation records when).
 */
const SYNC_COMMIT_TIMEOUT_MS = 500;

/** The run's length (cut short by a signal), with a fault every --chaos into a store started here. */
async function runFor(session: Session, stack: Stack | undefined, faults: string[]): Promise<void> {
  const { options, abort } = session;
  const end = Date.now() + options.durationMs;
  // Each wait takes its abort listener away again: a long --chaos run waits hundreds of times.
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const onAbort = () => (clearTimeout(timer), resolve());
      const timer = setTimeout(
        () => {
          abort.signal.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  if (!options.chaos || !stack) return wait(options.durationMs);
  const every = duration(options.chaos);
  for (let i = 0; Date.now() + every < end && !abort.signal.aborted; i++) {
    await wait(every);
    faults.push(await injectFault(stack, i));
  }
  await wait(end - Date.now());
}

function printReport(run: CheckedRun, kinds: readonly ViolationKind[], faults: string[]): void {
  console.log(formatReport(run.report, run.t0));
  console.log(availabilityLine(run));
  const staleness = stalenessLine(measureStaleness(run.history), kinds);
  if (staleness) console.log(staleness);
  if (faults.length) console.log(`faults injected: ${faults.join('; ')}`);
}

/** Stops a store started here and removes its directory, unless --keep-data. */
async function cleanUp(session: Session): Promise<void> {
  await session.stack?.stop();
  if (session.dataDir && !session.options.keepData)
    await rm(session.dataDir, { recursive: true, force: true });
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

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
