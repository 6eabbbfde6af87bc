/**
 * What an embedded cluster looks like, decided without touching anything: where its files live,
 * the settings and access rules it is written with, and the command lines that drive it.
 * postgres-cluster.ts does the work; these pure pieces are tested on their own.
 */
import * as path from 'node:path';
import type pg from 'pg';

export type PgRole = 'primary' | 'standby';
/** Stop order too: the primary first, so its shutdown checkpoint is streamed to the standby. */
export const ROLES: readonly PgRole[] = ['primary', 'standby'];

export const SUPERUSER = 'bazar';
export const DATABASE = 'bazar';
export const SLOT = 'bazar_standby';
/** application_name of the standby's walreceiver, as seen in pg_stat_replication. */
export const STANDBY_NAME = 'bazar_standby';
const FORMAT = 1;

/** Paths, ports and settings of one cluster; fixed for its life. */
export interface ClusterLayout {
  dataDir: string;
  /** PGDATA of each server. */
  pgdata: Record<PgRole, string>;
  /** Server log of each server (pg_ctl -l). */
  logFile: Record<PgRole, string>;
  /** Password and format marker; its absence means "not set up". */
  metaFile: string;
  /** The superuser's password for initdb, removed right after. */
  passwordFile: string;
  port: Record<PgRole, number>;
  fsync: boolean;
}

export interface ClusterMeta {
  format: number;
  password: string;
}

/** Paths of the two PGDATA directories inside a cluster's dataDir (used by tests). */
export function pgDataDirs(dataDir: string): { primary: string; standby: string } {
  const root = path.resolve(dataDir);
  return { primary: path.join(root, 'primary'), standby: path.join(root, 'standby') };
}

export function clusterLayout(opts: {
  dataDir: string;
  primaryPort: number;
  standbyPort: number;
  fsync?: boolean | undefined;
}): ClusterLayout {
  const dataDir = path.resolve(opts.dataDir);
  if (opts.primaryPort === opts.standbyPort) throw new Error('primaryPort and standbyPort must differ');
  return {
    dataDir,
    pgdata: pgDataDirs(dataDir),
    logFile: { primary: path.join(dataDir, 'primary.log'), standby: path.join(dataDir, 'standby.log') },
    metaFile: path.join(dataDir, 'cluster.json'),
    passwordFile: path.join(dataDir, '.pwfile'),
    port: { primary: opts.primaryPort, standby: opts.standbyPort },
    fsync: opts.fsync ?? true,
  };
}

export function clusterUrl(port: number, password: string): string {
  return `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/${DATABASE}`;
}

export function connParams(port: number, password: string): pg.ClientConfig {
  return { host: '127.0.0.1', port, user: SUPERUSER, password, database: DATABASE };
}

/** bazar.conf of one server: rewritten on every start, so that changed ports or options take effect on reuse. */
export function serverConf(
  layout: ClusterLayout,
  role: PgRole,
  password: string,
  knobs: { replayDelayMs?: number } = {},
): string {
  const lines = [
    '# Written by tools/devstack on every start; edits are overwritten.',
    "listen_addresses = '127.0.0.1'",
    `port = ${layout.port[role]}`,
    // No Unix sockets: avoids lock-file clashes in /tmp between clusters and needs no socket dir.
    "unix_socket_directories = ''",
    "password_encryption = 'scram-sha-256'",
    'max_connections = 200',
    "shared_buffers = '64MB'",
    'wal_level = replica',
    'max_wal_senders = 10',
    'max_replication_slots = 10',
    // A lost standby must not fill the disk: the slot gives up WAL beyond this.
    "max_slot_wal_keep_size = '1GB'",
    'hot_standby = on',
    'hot_standby_feedback = on',
    // Strict mode commits with synchronous_commit = remote_apply; that needs a named sync standby.
    "synchronous_standby_names = '*'",
    // Reconnect quickly after a primary restart (fault tests).
    "wal_retrieve_retry_interval = '500ms'",
    `fsync = ${layout.fsync ? 'on' : 'off'}`,
    `full_page_writes = ${layout.fsync ? 'on' : 'off'}`,
    "log_line_prefix = '%m [%p] %q%u@%d '",
  ];
  if (role === 'standby') {
    const conninfo =
      `host=127.0.0.1 port=${layout.port.primary} user=${SUPERUSER} password=${password} ` +
      `application_name=${STANDBY_NAME} connect_timeout=5`;
    lines.push(`primary_conninfo = '${conninfo}'`, `primary_slot_name = '${SLOT}'`);
    // The lag knob (`npm run ctl -- lag`): each commit is applied this long after the primary made it.
    if (knobs.replayDelayMs) lines.push(`recovery_min_apply_delay = '${knobs.replayDelayMs}ms'`);
  }
  return lines.join('\n') + '\n';
}

/** pg_hba.conf: loopback only; the replication rule lets the standby's walreceiver in. */
export const ACCESS_RULES =
  [
    '# TYPE  DATABASE     USER  ADDRESS       METHOD',
    'local   all          all                 scram-sha-256',
    'host    all          all   127.0.0.1/32  scram-sha-256',
    `host    replication  ${SUPERUSER} 127.0.0.1/32  scram-sha-256`,
  ].join('\n') + '\n';

/** Appended once to initdb's postgresql.conf, so that serverConf's file is read. */
export const INCLUDE_SERVER_CONF = "\ninclude_if_exists = 'bazar.conf'\n";

export function initdbArgs(layout: ClusterLayout): string[] {
  const args = [
    '-D',
    layout.pgdata.primary,
    '-U',
    SUPERUSER,
    `--pwfile=${layout.passwordFile}`,
    '-E',
    'UTF8',
    '--locale=C',
    '--auth-local=scram-sha-256',
    '--auth-host=scram-sha-256',
    '--no-instructions',
  ];
  if (!layout.fsync) args.push('--no-sync');
  return args;
}

export function pgCtlStartArgs(pgdata: string, logFile: string): string[] {
  return ['start', '-w', '-t', '60', '-D', pgdata, '-l', logFile];
}

export function pgCtlReloadArgs(pgdata: string): string[] {
  return ['reload', '-D', pgdata];
}

/** Fast = roll back open transactions, then a clean shutdown checkpoint; immediate = no checkpoint. */
export function pgCtlStopArgs(pgdata: string, mode: 'fast' | 'immediate'): string[] {
  return ['stop', '-w', '-t', mode === 'fast' ? '60' : '30', '-m', mode, '-D', pgdata];
}

export function formatClusterMeta(password: string): string {
  return JSON.stringify({ format: FORMAT, password } satisfies ClusterMeta, null, 2) + '\n';
}

/** The meta file's content, or undefined when it is not one this code wrote (treated as not set up). */
export function parseClusterMeta(text: string): ClusterMeta | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (
    typeof parsed === 'object' &&
    parsed !== null &&
    'format' in parsed &&
    parsed.format === FORMAT &&
    'password' in parsed &&
    typeof parsed.password === 'string'
  ) {
    return { format: FORMAT, password: parsed.password };
  }
  return undefined;
}
