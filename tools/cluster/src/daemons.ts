/**
 * Starting the cluster's long-running processes. Each daemon is started detached (it outlives
 * `npm run cluster -- up`), its output appended to logs/<name>.log, its pid in pids/<name>.pid, and,
 * before it execs, it joins the cluster's cgroup in every hierarchy and (unless it is the host-side
 * forwarder) enters the cluster's network and mount namespaces. nsenter execs the daemon itself, so
 * the pid we record is the daemon's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { procsFiles } from './cgroups.js';
import { cleanEnv, nsenterArgs, waitFor, type Namespaces } from './exec.js';

export interface DaemonSpec {
  name: string;
  argv: string[];
  /** 'cluster': inside the cluster's net + mount namespaces; 'host': the host's (the forwarder). */
  where: 'cluster' | 'host';
  extraPath?: string[];
  env?: Record<string, string>;
}

export interface DaemonContext {
  ns: Namespaces;
  logDir: string;
  pidDir: string;
  /** The cgroup the daemons join, e.g. /bazar-cluster-x/system. */
  cgroup: string;
}

export interface Daemon {
  name: string;
  pid: number;
  log: string;
  child: ChildProcess;
  exited: boolean;
  exitDescription?: string;
}

const JOIN_CGROUP_AND_EXEC = 'for f in $BAZAR_CGROUP_PROCS; do echo $$ > "$f"; done; exec "$@"';

export function startDaemon(ctx: DaemonContext, spec: DaemonSpec): Daemon {
  mkdirSync(ctx.logDir, { recursive: true });
  mkdirSync(ctx.pidDir, { recursive: true });
  const log = path.join(ctx.logDir, `${spec.name}.log`);
  const fd = openSync(log, 'a');
  const argv = spec.where === 'cluster' ? ['nsenter', ...nsenterArgs(ctx.ns, spec.argv)] : spec.argv;
  const env = {
    ...cleanEnv(spec.extraPath ?? []),
    ...spec.env,
    BAZAR_CGROUP_PROCS: procsFiles(ctx.cgroup).join(' '),
  };
  const child = spawn('sh', ['-c', JOIN_CGROUP_AND_EXEC, 'sh', ...argv], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${spec.name}`);
  const daemon: Daemon = { name: spec.name, pid: child.pid, log, child, exited: false };
  child.on('exit', (code, signal) => {
    daemon.exited = true;
    daemon.exitDescription = signal ? `killed by ${signal}` : `exited with code ${code}`;
  });
  child.unref();
  writeFileSync(path.join(ctx.pidDir, `${spec.name}.pid`), `${child.pid}\n`);
  return daemon;
}

/** Whether a recorded daemon still runs (and is still the program we started, not a reused pid). */
export function daemonAlive(pidDir: string, name: string, program: string): number | undefined {
  const file = path.join(pidDir, `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((arg) => path.basename(arg) === program) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function tail(file: string, lines = 30): string {
  try {
    const all = readFileSync(file, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** For waitFor's abort: a message with the log's tail once the daemon has died. */
export function deathNotice(d: Daemon): string | undefined {
  return d.exited ? `${d.name} ${d.exitDescription}; last lines of ${d.log}:\n${tail(d.log)}` : undefined;
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the daemon has exited. */
export async function stopDaemon(d: Daemon): Promise<void> {
  if (d.exited) return;
  try {
    process.kill(d.pid, 'SIGTERM');
  } catch {
    return;
  }
  await waitFor(`${d.name} to exit`, async () => d.exited || undefined, 10_000, { everyMs: 50 }).catch(() => {
    process.kill(d.pid, 'SIGKILL');
  });
}
