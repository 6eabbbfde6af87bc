/**
 * `npm start`: the whole store on loopback with one command.
 *
 *   node dist/tools/devstack/src/cli.js [--fronts N] [--catalog-replicas N] [--order-replicas N]
 *        [--port P] [--mode strict|session|eventual] [--data-dir DIR] [--reset] [--help]
 *
 * DATABASE_URL (+ DATABASE_REPLICA_URL) in the environment = use that Postgres, no embedded one.
 * Ctrl-C (SIGINT) or SIGTERM stops everything; a second Ctrl-C forces it.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { startStack, type ConsistencyMode, type Stack } from './stack.js';

const USAGE = `Usage: npm start -- [options]

Starts Bazar on 127.0.0.1: an embedded PostgreSQL primary + hot standby, the catalog
and order services (one origin each plus replicas) and the front(s).

Options:
  --fronts N             front processes (default 1)
  --catalog-replicas N   catalog replicas besides the origin (default 1)
  --order-replicas N     order replicas besides the origin (default 1)
  --port P               first front's port; further fronts take the next ports (default 8080)
  --mode MODE            consistency mode: strict | session | eventual (default strict)
  --data-dir DIR         Postgres data and logs (default .bazar in the current directory)
  --reset                wipe the data directory first (fresh seed data)
  -h, --help             show this help

Environment:
  DATABASE_URL, DATABASE_REPLICA_URL   use this existing Postgres primary (and standby)
                                       instead of the embedded one
  ADMIN_TOKEN, INTERNAL_TOKEN          fixed tokens (at least 16 characters); random otherwise
  LOG_LEVEL                            services' log level (default info)
`;

const MODES: readonly ConsistencyMode[] = ['strict', 'session', 'eventual'];

class UsageError extends Error {}

interface CliOptions {
  fronts: number;
  catalogReplicas: number;
  orderReplicas: number;
  port: number;
  mode: ConsistencyMode;
  dataDir: string;
  reset: boolean;
}

function parseCli(argv: string[]): CliOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        fronts: { type: 'string' },
        'catalog-replicas': { type: 'string' },
        'order-replicas': { type: 'string' },
        port: { type: 'string' },
        mode: { type: 'string' },
        'data-dir': { type: 'string' },
        reset: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const mode = v.mode ?? 'strict';
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`--mode must be one of ${MODES.join(', ')}, got "${mode}"`);
  }
  const dataDir = v['data-dir'] ?? '.bazar';
  if (dataDir.trim() === '') throw new UsageError('--data-dir must not be empty');
  const fronts = int(v.fronts, 1, '--fronts', 1, 32);
  const port = int(v.port, 8080, '--port', 1, 65_535);
  if (port + fronts - 1 > 65_535) throw new UsageError(`--port ${port} leaves no room for ${fronts} fronts`);
  return {
    fronts,
    catalogReplicas: int(v['catalog-replicas'], 1, '--catalog-replicas', 0, 32),
    orderReplicas: int(v['order-replicas'], 1, '--order-replicas', 0, 32),
    port,
    mode: mode as ConsistencyMode,
    dataDir: path.resolve(dataDir),
    reset: v.reset ?? false,
  };
}

function int(raw: string | undefined, dflt: number, flag: string, min: number, max: number): number {
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`${flag} must be a whole number, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new UsageError(`${flag} must be from ${min} to ${max}, got ${n}`);
  return n;
}

function token(name: string): string | undefined {
  const value = process.env[name]?.trim();
  if (!value) return undefined;
  if (value.length < 16) throw new UsageError(`${name} must be at least 16 characters`);
  return value;
}

/** Relative to the cwd when inside it: shorter to read and to paste. */
function display(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

async function main(): Promise<number> {
  let opts: CliOptions | 'help';
  let adminToken: string | undefined;
  let internalToken: string | undefined;
  try {
    opts = parseCli(process.argv.slice(2));
    adminToken = token('ADMIN_TOKEN');
    internalToken = token('INTERNAL_TOKEN');
    if (process.env['DATABASE_REPLICA_URL'] && !process.env['DATABASE_URL']) {
      throw new UsageError('DATABASE_REPLICA_URL is set but DATABASE_URL is not');
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bazar: ${err.message}\nRun with --help for the options.\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }

  const databaseUrl = process.env['DATABASE_URL']?.trim() || undefined;
  const replicaDatabaseUrl = process.env['DATABASE_REPLICA_URL']?.trim() || undefined;
  const logDir = path.join(opts.dataDir, 'logs');
  if (opts.reset) {
    await fs.rm(opts.dataDir, { recursive: true, force: true });
    process.stdout.write(`Wiped ${display(opts.dataDir)}\n`);
  }

  let stack: Stack | undefined;
  let stopping: Promise<void> | undefined;
  const abort = new AbortController();
  let signals = 0;
  let lastSignalAt = 0;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.stdout.write('\nStopping…\n');
      await stack?.stop();
      process.stdout.write('stopped\n');
    })();
    return stopping;
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    const now = Date.now();
    // One Ctrl-C can arrive twice (from the terminal and forwarded by a wrapper): not a "second" one.
    if (signals > 0 && now - lastSignalAt < 300) return;
    signals += 1;
    lastSignalAt = now;
    if (signals === 1) {
      abort.abort();
      // During start-up startStack notices the abort, tears down and rejects (handled below).
      if (!stack) return;
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`bazar: stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
          process.exit(1);
        },
      );
      return;
    }
    // Second Ctrl-C: force. Services exit when our IPC channel closes and Postgres is
    // stopped by its detached reaper once this process is gone; SIGKILL the services anyway.
    process.stderr.write(`bazar: ${sig} again, forcing exit\n`);
    for (const p of stack?.all ?? []) {
      const pid = p.pid();
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const t0 = Date.now();
  process.stdout.write(
    `Starting Bazar (${opts.mode} mode, ${opts.fronts} front(s), catalog 1+${opts.catalogReplicas}, ` +
      `order 1+${opts.orderReplicas})${databaseUrl ? ' against DATABASE_URL' : ` with data in ${display(opts.dataDir)}`}…\n`,
  );
  try {
    stack = await startStack({
      fronts: opts.fronts,
      catalogReplicas: opts.catalogReplicas,
      orderReplicas: opts.orderReplicas,
      consistencyMode: opts.mode,
      frontPort: opts.port,
      dataDir: opts.dataDir,
      logDir,
      signal: abort.signal,
      ...(databaseUrl ? { databaseUrl } : {}),
      ...(replicaDatabaseUrl ? { replicaDatabaseUrl } : {}),
      ...(adminToken ? { adminToken } : {}),
      ...(internalToken ? { internalToken } : {}),
      ...(process.env['LOG_LEVEL'] ? { logLevel: process.env['LOG_LEVEL'] } : {}),
      log: (proc, line) => {
        // Children's output goes to their log files; only Postgres progress is shown here,
        // and a service that dies while the store is up.
        if (proc === 'postgres') process.stdout.write(`  ${line}\n`);
        else if (stack && !stopping && line.startsWith('--- exited')) {
          process.stderr.write(
            `bazar: ${proc} ${line.replace(/^-+ | -+$/g, '')}; see ${display(logDir)}/${proc}.log\n`,
          );
        }
      },
    });
  } catch (err) {
    if (abort.signal.aborted) {
      process.stdout.write('stopped\n');
      return 0;
    }
    process.stderr.write(`bazar: ${err instanceof Error ? err.message : String(err)}\n`);
    process.stderr.write(`Logs: ${display(logDir)}/\n`);
    return 1;
  }

  const front = stack.fronts[0]?.url ?? '';
  const lines = [
    '',
    `Bazar is running — ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    '',
    ...stack.all.map((p) => `  ${p.name.padEnd(20)} ${p.url.padEnd(24)} pid ${p.pid() ?? '?'}`),
    stack.pg
      ? `  ${'postgres'.padEnd(20)} primary ${new URL(stack.primaryUrl).port}, standby ${new URL(stack.standbyUrl).port} (${display(path.join(opts.dataDir, 'pg'))})`
      : `  ${'postgres'.padEnd(20)} external (DATABASE_URL${replicaDatabaseUrl ? ', DATABASE_REPLICA_URL' : ''})`,
    '',
    `  Front:        ${stack.fronts.map((f) => f.url).join('  ')}`,
    `  Admin token:  ${stack.adminToken}`,
    `  Logs:         ${display(logDir)}/<name>.log`,
    '',
    'Try:',
    `  curl -i ${front}/search/distributed%20systems`,
    `  curl -i ${front}/info/1`,
    `  curl -i -X POST ${front}/purchase/1`,
    `  curl -i -X PATCH ${front}/books/1 -H 'Authorization: Bearer ${stack.adminToken}' \\`,
    `       -H 'Content-Type: application/json' -d '{"price":42}'`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  // Stay up until a signal; the children's IPC channels keep the event loop alive.
  return new Promise<number>(() => {});
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bazar: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
