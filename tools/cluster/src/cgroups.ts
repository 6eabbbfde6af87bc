/**
 * The cluster's cgroup. Every process of the cluster lives below one cgroup, `/bazar-cluster-<name>`, in
 * every hierarchy: the daemons in `.../system` (put there before they exec), the pods in `.../kubepods`
 * (the kubelet's `cgroupRoot`, so runc creates the pods' cgroups there). That gives `down` a complete,
 * race-free list of what to kill (freeze, SIGKILL, thaw), even for containerd-shims that reparented to
 * PID 1 and containers in pod namespaces of their own, and it tells which cgroups to remove afterwards.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { sleep } from './exec.js';

export interface Hierarchy {
  mountPoint: string;
  /** v1 controllers (or name=...) of this hierarchy; empty for cgroup2. */
  controllers: string[];
  version: 1 | 2;
}

/** Every cgroup hierarchy mounted on this machine (v1 and the hybrid-mode cgroup2). */
export function hierarchies(): Hierarchy[] {
  const out: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [fstype, , superOpts = ''] = right.split(' ');
    const mountPoint = left.split(' ')[4];
    if (!mountPoint || (fstype !== 'cgroup' && fstype !== 'cgroup2')) continue;
    if (out.some((h) => h.mountPoint === mountPoint)) continue;
    const controllers =
      fstype === 'cgroup'
        ? superOpts.split(',').filter((o) => o !== 'rw' && o !== 'ro' && !o.startsWith('release_agent'))
        : [];
    out.push({ mountPoint, controllers, version: fstype === 'cgroup' ? 1 : 2 });
  }
  return out;
}

function isCpuset(h: Hierarchy): boolean {
  return h.controllers.includes('cpuset');
}

/** cpuset v1 refuses tasks in a cgroup whose cpus/mems are empty: copy the parent's. */
function inheritCpuset(dir: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const own = path.join(dir, file);
    if (readFileSync(own, 'utf8').trim() !== '') continue;
    writeFileSync(own, readFileSync(path.join(path.dirname(dir), file), 'utf8').trim());
  }
}

/** Creates `rel` (e.g. /bazar-cluster-x/system) in every hierarchy. */
export function createCgroup(rel: string): void {
  for (const h of hierarchies()) {
    let dir = h.mountPoint;
    for (const part of rel.split('/').filter(Boolean)) {
      dir = path.join(dir, part);
      if (!existsSync(dir)) mkdirSync(dir);
      if (isCpuset(h)) inheritCpuset(dir);
    }
  }
}

/** The `cgroup.procs` files a shell writes `$$` into, before exec, to join `rel` everywhere. */
export function procsFiles(rel: string): string[] {
  return hierarchies().map((h) => path.join(h.mountPoint, rel, 'cgroup.procs'));
}

/** Every cgroup directory at or below `rel`, deepest first, in every hierarchy. */
export function cgroupDirs(rel: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
    out.push(dir);
  };
  for (const h of hierarchies()) {
    const top = path.join(h.mountPoint, rel);
    if (existsSync(top)) walk(top);
  }
  return out;
}

export function pidsIn(rel: string): number[] {
  const pids = new Set<number>();
  for (const dir of cgroupDirs(rel)) {
    try {
      for (const p of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        if (p.trim()) pids.add(Number(p));
      }
    } catch {
      // removed meanwhile
    }
  }
  return [...pids];
}

function freezerDir(rel: string): string | undefined {
  const h = hierarchies().find((x) => x.controllers.includes('freezer'));
  const dir = h ? path.join(h.mountPoint, rel) : undefined;
  return dir && existsSync(path.join(dir, 'freezer.state')) ? dir : undefined;
}

async function setFreezer(dir: string, state: 'FROZEN' | 'THAWED'): Promise<void> {
  writeFileSync(path.join(dir, 'freezer.state'), state);
  for (let i = 0; i < 50; i++) {
    if (readFileSync(path.join(dir, 'freezer.state'), 'utf8').trim() === state) return;
    await sleep(20);
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Kills every process in the tree: frozen first, so nothing can fork or respawn between listing and
 * killing (a shim restarting a container, kubelet restarting a pod), then SIGKILL, thaw, and wait.
 */
export async function killCgroupTree(rel: string, timeoutMs = 20_000): Promise<number[]> {
  const killed = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = pidsIn(rel);
    if (pids.length === 0) return [...killed];
    if (Date.now() > deadline) throw new Error(`processes survive in cgroup ${rel}: ${pids.join(' ')}`);
    const freezer = freezerDir(rel);
    if (freezer) await setFreezer(freezer, 'FROZEN');
    for (const pid of pids) {
      kill(pid, 'SIGKILL');
      killed.add(pid);
    }
    if (freezer) await setFreezer(freezer, 'THAWED');
    await sleep(100);
  }
}

/** Removes the cgroup tree in every hierarchy (deepest first; retried while exiting tasks linger). */
export async function removeCgroupTree(rel: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failures: string[] = [];
    for (const dir of cgroupDirs(rel)) {
      try {
        rmdirSync(dir);
      } catch (err) {
        failures.push(`${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    if (failures.length === 0) return;
    if (Date.now() > deadline) throw new Error(`cannot remove cgroups:\n  ${failures.join('\n  ')}`);
    await sleep(100);
  }
}

/** The cluster's top-level cgroup `name`, wherever it still exists (one path per hierarchy). */
export function strayCgroups(name: string): string[] {
  return hierarchies()
    .map((h) => path.join(h.mountPoint, name))
    .filter((dir) => existsSync(dir));
}
