/**
 * What `npm start` is asked to do, read from its command line and environment without side
 * effects, and the launcher options that follow from it.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ConsistencyMode, StackOptions } from './stack.js';
import { MAX_SEED_BOOKS } from '../../../services/catalog/src/seed.js';

export const USAGE = `Usage: npm start -- [options]

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
  --books N              seed N generated books beside the lab's seven (ids 8 to N+7; 0 to ${MAX_SEED_BOOKS.toLocaleString('en-US')}):
                         deterministic titles, 300 topics of Zipf-like sizes, prices and stock; a million
                         take about 20 s. Once seeded they stay (a smaller N adds nothing; --reset
                         starts over); refused if the store holds books it did not make
  --traces               OpenTelemetry traces: a collector (bash scripts/otelcol.sh builds it) receives
                         every service's spans into <data dir>/traces/; npm run trace shows them
  -h, --help             show this help

Environment:
  DATABASE_URL, DATABASE_REPLICA_URL   use this existing Postgres primary (and standby)
                                       instead of the embedded one
  ADMIN_TOKEN, INTERNAL_TOKEN          fixed tokens (at least 16 characters); random otherwise
  LOG_LEVEL                            services' log level (default info)
  OTEL_EXPORTER_OTLP_ENDPOINT          export the services' spans to your own collector instead
`;

const MODES: readonly ConsistencyMode[] = ['strict', 'session', 'eventual'];

/** A command line or environment the command refuses; the message is shown to the user. */
export class UsageError extends Error {}

export interface CliOptions {
  fronts: number;
  catalogReplicas: number;
  orderReplicas: number;
  port: number;
  mode: ConsistencyMode;
  dataDir: string;
  reset: boolean;
  /** Run a local OpenTelemetry Collector and trace every service into it. */
  traces: boolean;
  /** Generated books to seed beside the lab's seven (0: none). */
  books: number;
}

/** The command line's options plus what the environment adds. */
export interface Invocation {
  options: CliOptions;
  adminToken: string | undefined;
  internalToken: string | undefined;
  databaseUrl: string | undefined;
  replicaDatabaseUrl: string | undefined;
  logLevel: string | undefined;
}

/**
 * Throws UsageError for a bad command line or environment. The environment is checked even
 * with --help, as it always was: a bad token is reported first.
 */
export function parseInvocation(argv: string[], env: NodeJS.ProcessEnv): Invocation | 'help' {
  const options = parseCli(argv);
  const adminToken = token(env, 'ADMIN_TOKEN');
  const internalToken = token(env, 'INTERNAL_TOKEN');
  if (env['DATABASE_REPLICA_URL'] && !env['DATABASE_URL']) {
    throw new UsageError('DATABASE_REPLICA_URL is set but DATABASE_URL is not');
  }
  if (options === 'help') return 'help';
  return {
    options,
    adminToken,
    internalToken,
    databaseUrl: env['DATABASE_URL']?.trim() || undefined,
    replicaDatabaseUrl: env['DATABASE_REPLICA_URL']?.trim() || undefined,
    logLevel: env['LOG_LEVEL'] || undefined,
  };
}

export function parseCli(argv: string[]): CliOptions | 'help' {
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
        traces: { type: 'boolean' },
        books: { type: 'string' },
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
    traces: v.traces ?? false,
    books: int(v.books, 0, '--books', 0, MAX_SEED_BOOKS),
  };
}

function int(raw: string | undefined, dflt: number, flag: string, min: number, max: number): number {
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`${flag} must be a whole number, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new UsageError(`${flag} must be from ${min} to ${max}, got ${n}`);
  return n;
}

function token(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  if (!value) return undefined;
  if (value.length < 16) throw new UsageError(`${name} must be at least 16 characters`);
  return value;
}

/** Children write their logs here, one file each. */
export function logDirOf(options: CliOptions): string {
  return path.join(options.dataDir, 'logs');
}

/** The launcher's options: what the invocation fixed; the rest is left to the launcher's defaults. */
export function stackOptions(
  inv: Invocation,
  run: {
    signal: AbortSignal;
    log: NonNullable<StackOptions['log']>;
    knobsUrl?: string;
    /** The local collector of --traces: every service exports its spans there. */
    otlpEndpoint?: string;
  },
): StackOptions {
  const { options } = inv;
  return {
    fronts: options.fronts,
    catalogReplicas: options.catalogReplicas,
    orderReplicas: options.orderReplicas,
    consistencyMode: options.mode,
    frontPort: options.port,
    dataDir: options.dataDir,
    logDir: logDirOf(options),
    // The live policy knob (`npm run ctl -- policy`): every service follows this file.
    policyFile: path.join(options.dataDir, 'policy.json'),
    signal: run.signal,
    ...(inv.databaseUrl ? { databaseUrl: inv.databaseUrl } : {}),
    ...(inv.replicaDatabaseUrl ? { replicaDatabaseUrl: inv.replicaDatabaseUrl } : {}),
    ...(inv.adminToken ? { adminToken: inv.adminToken } : {}),
    ...(inv.internalToken ? { internalToken: inv.internalToken } : {}),
    ...(inv.logLevel ? { logLevel: inv.logLevel } : {}),
    ...(options.books > 0 ? { books: options.books } : {}),
    log: run.log,
    ...(run.knobsUrl ? { knobsUrl: run.knobsUrl } : {}),
    ...(run.otlpEndpoint ? { env: { OTEL_EXPORTER_OTLP_ENDPOINT: run.otlpEndpoint } } : {}),
  };
}
