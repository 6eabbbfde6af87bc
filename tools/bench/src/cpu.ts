/**
 * CPU time of the processes on a path, from Linux /proc: one Node process by its pid, a Postgres server
 * as its postmaster (found through `postmaster.pid` in its data directory) plus every child it has
 * (backends, walsender/walreceiver, startup/recovery, checkpointer, ...). A run takes a snapshot of
 * every watched process before and after and divides the difference by the requests it served:
 * CPU µs per request per process. Elsewhere than Linux the figures are simply absent.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The fields of /proc/<pid>/stat the bench uses (times in clock ticks). */
export interface ProcStat {
  pid: number;
  ppid: number;
  utime: number;
  stime: number;
  /** CPU of children this process has waited for (exited backends end up here). */
  cutime: number;
  cstime: number;
}

/**
 * Parses one /proc/<pid>/stat line. The command name (field 2) is in parentheses and may itself contain
 * spaces and parentheses, so fields are counted from the last ')'.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // After ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9) minflt(10) cminflt(11)
  // majflt(12) cmajflt(13) utime(14) stime(15) cutime(16) cstime(17) ...
  const f = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const n = (i: number) => Number(f[i]);
  const stat = { pid, ppid: n(1), utime: n(11), stime: n(12), cutime: n(13), cstime: n(14) };
  return Object.values(stat).every(Number.isFinite) ? stat : undefined;
}

/** The postmaster's pid: the first line of `postmaster.pid` in a data directory. */
export function parsePostmasterPid(text: string): number | undefined {
  const pid = Number(text.split('\n')[0]?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export const CLK_TCK = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(out.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** User + system CPU milliseconds of one process so far, or undefined (gone, or no /proc). */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const s = readStat(pid);
  return s ? ((s.utime + s.stime) * 1000) / CLK_TCK : undefined;
}

/** Every process's stat, read once (a tree is then summed without reading /proc again). */
export function allStats(): ProcStat[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcStat[] = [];
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/**
 * CPU ticks of a process and all its descendants in `stats`, counting what exited children left in its
 * cutime/cstime: a backend that exits between two snapshots keeps its time in the sum.
 */
export function treeTicks(stats: ProcStat[], root: number): number | undefined {
  const byParent = new Map<number, ProcStat[]>();
  let top: ProcStat | undefined;
  for (const s of stats) {
    if (s.pid === root) top = s;
    const siblings = byParent.get(s.ppid);
    if (siblings) siblings.push(s);
    else byParent.set(s.ppid, [s]);
  }
  if (!top) return undefined;
  let ticks = 0;
  const queue = [top];
  for (let s = queue.pop(); s; s = queue.pop()) {
    ticks += s.utime + s.stime + s.cutime + s.cstime;
    queue.push(...(byParent.get(s.pid) ?? []));
  }
  return ticks;
}

/** One process the bench charges CPU to: a Node service (pid) or a Postgres server (data directory). */
export type Watched =
  { name: string; pid: () => number | undefined } | { name: string; pgdata: string; postmaster?: number };

/** The postmaster of a Postgres data directory, if it is running. */
export function postmasterOf(pgdata: string): number | undefined {
  try {
    return parsePostmasterPid(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU milliseconds per watched process name, at one instant (absent where unreadable). */
export type CpuSnapshot = Map<string, number>;

export function snapshot(watched: Watched[]): CpuSnapshot {
  const out: CpuSnapshot = new Map();
  const trees = watched.filter((w) => 'pgdata' in w);
  const stats = trees.length > 0 ? allStats() : [];
  for (const w of watched) {
    if ('pgdata' in w) {
      const root = w.postmaster ?? postmasterOf(w.pgdata);
      const ticks = root === undefined ? undefined : treeTicks(stats, root);
      if (ticks !== undefined) out.set(w.name, (ticks * 1000) / CLK_TCK);
    } else {
      const ms = processCpuMs(w.pid());
      if (ms !== undefined) out.set(w.name, ms);
    }
  }
  return out;
}

/**
 * CPU milliseconds each process spent between two snapshots; a process missing from either is left
 * out (it restarted or is not readable), rather than charged a wrong figure.
 */
export function spentBetween(before: CpuSnapshot, after: CpuSnapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, ms] of after) {
    const was = before.get(name);
    if (was !== undefined) out.set(name, ms - was);
  }
  return out;
}

/** CPU µs per request from milliseconds spent (nothing when no request completed). */
export function perRequest(spentMs: Map<string, number>, requests: number): Map<string, number> {
  const out = new Map<string, number>();
  if (requests <= 0) return out;
  for (const [name, ms] of spentMs) out.set(name, (ms * 1000) / requests);
  return out;
}

/**
 * Several runs pooled: each process's CPU over the requests of the runs that measured it. A run in
 * which no request completed still counts its CPU (a saturated round is not left out).
 */
export function poolSpent(runs: Array<{ cpuSpentMs?: Map<string, number>; requests: number }>) {
  const measuredRuns = runs.filter((r) => r.cpuSpentMs !== undefined);
  if (measuredRuns.length === 0) return undefined;
  const spent = new Map<string, number>();
  const requests = new Map<string, number>();
  for (const r of measuredRuns) {
    for (const [name, ms] of r.cpuSpentMs as Map<string, number>) {
      spent.set(name, (spent.get(name) ?? 0) + ms);
      requests.set(name, (requests.get(name) ?? 0) + r.requests);
    }
  }
  const perReq = new Map<string, number>();
  for (const [name, ms] of spent) {
    const n = requests.get(name) ?? 0;
    if (n > 0) perReq.set(name, (ms * 1000) / n);
  }
  return { spent, perRequest: perReq };
}

/**
 * What a process is called in the breakdowns: its name without the instance number, so that the two
 * fronts of a stack add up to one `front` figure ("catalog-replica-1" → "catalog replica",
 * "chain-front-0" → "front", "pg primary" stays).
 */
export function groupOf(name: string): string {
  return name
    .replace(/^chain-/, '')
    .replace(/^bench-/, '')
    .replace(/-\d+$/, '')
    .replace(/-/g, ' ');
}

/** The tier a group belongs to, for the stacked CPU chart: front, catalog, order, pg primary, pg standby. */
export function tierOf(group: string): string {
  for (const tier of ['front', 'catalog', 'order', 'pg primary', 'pg standby', 'baseline']) {
    if (group.startsWith(tier)) return tier;
  }
  return 'other';
}

/** Per-process figures summed into their groups, in a stable order (fronts first, Postgres last). */
export function byGroup(cpu: Map<string, number>): Array<{ group: string; us: number }> {
  const sums = new Map<string, number>();
  for (const [name, us] of cpu) sums.set(groupOf(name), (sums.get(groupOf(name)) ?? 0) + us);
  const order = ['baseline', 'front', 'catalog', 'order', 'pg primary', 'pg standby', 'other'];
  const rank = (g: string) => order.indexOf(tierOf(g));
  return [...sums]
    .map(([group, us]) => ({ group, us }))
    .sort((a, b) => rank(a.group) - rank(b.group) || a.group.localeCompare(b.group));
}

export function totalOf(cpu: Map<string, number> | undefined): number | undefined {
  if (!cpu || cpu.size === 0) return undefined;
  let sum = 0;
  for (const v of cpu.values()) sum += v;
  return sum;
}

/**
 * "front 480 · catalog origin 130 · pg standby 40 · total 650 µs/req": groups under half a microsecond
 * per request are left out of the list (not of the total).
 */
export function formatBreakdown(cpu: Map<string, number> | undefined): string {
  const total = totalOf(cpu);
  if (!cpu || total === undefined) return 'CPU not measured (no /proc)';
  const parts = byGroup(cpu)
    .filter((g) => g.us >= 0.5)
    .map((g) => `${g.group} ${g.us.toFixed(0)}`);
  return [...parts, `total ${total.toFixed(0)} µs/req`].join(' · ');
}

/** CPU per request summed by tier (front, catalog, order, pg primary, pg standby, ...). */
export function byTier(cpu: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const g of byGroup(cpu)) out.set(tierOf(g.group), (out.get(tierOf(g.group)) ?? 0) + g.us);
  return out;
}

/**
 * Bazar's CPU per tier against the floor's: "front 1.81x · catalog 1.56x · pg primary 126 vs 8 µs"
 * (a tier that is under 5 % of the floor's total is shown as both figures: its ratio would be noise).
 */
export function formatTierRatios(
  floor: Map<string, number> | undefined,
  bazar: Map<string, number> | undefined,
) {
  if (!floor || !bazar) return '';
  const f = byTier(floor);
  const b = byTier(bazar);
  const least = Math.max(5, 0.05 * (totalOf(floor) ?? 0));
  const parts: string[] = [];
  for (const [tier, us] of b) {
    const base = f.get(tier) ?? 0;
    if (us < 0.5 && base < 0.5) continue;
    parts.push(
      base >= least
        ? `${tier} ${(us / base).toFixed(2)}x`
        : `${tier} ${us.toFixed(0)} vs ${base.toFixed(0)} µs`,
    );
  }
  return parts.join(' · ');
}
