/**
 * `down`: removes everything a cluster made, whether `up` finished, failed half-way or was killed, and
 * whether or not the state file survived (everything is found from the cluster's name):
 *   1. every process: the cluster's cgroup tree (daemons, containerd-shims, every container), then any
 *      process still in the cluster's network or mount namespace (e.g. a `cluster exec` shell);
 *   2. the pinned namespaces: unmounting their files drops the last reference, so the mount
 *      namespace (tmpfs /run and /var/log, overlay rootfs, kubelet volumes, pod netns files) and the
 *      network namespace (veths, bridge, iptables rules) vanish with them;
 *   3. the cgroups, in every hierarchy; /var/lib/cni if `up` created it; the state directory unless
 *      --keep-data.
 * `leftovers()` then lists anything of the cluster still on the machine (it is also `status`'s check).
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { killCgroupTree, pidsIn, removeCgroupTree, strayCgroups } from './cgroups.js';
import { run, sleep } from './exec.js';
import type { ClusterLayout } from './layout.js';
import { readState } from './state.js';

export interface DownOptions {
  keepData?: boolean;
  /** Also remove the cluster's image store from the cache (the next `up` imports everything again). */
  purge?: boolean;
  log?: (line: string) => void;
}

export interface DownReport {
  killed: number;
  unmounted: string[];
  leftovers: string[];
}

interface HostMount {
  mountPoint: string;
  fstype: string;
  root: string;
}

function hostMounts(): HostMount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left = '', right = ''] = line.split(' - ');
      const f = left.split(' ');
      return { root: f[3] ?? '', mountPoint: unescapeMount(f[4] ?? ''), fstype: right.split(' ')[0] ?? '' };
    });
}

function unescapeMount(s: string): string {
  return s.replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function under(dir: string, p: string): boolean {
  return p === dir || p.startsWith(`${dir}/`);
}

/**
 * The namespaces still pinned by files under the state directory: the control plane's, every worker's
 * and the switch's. Only those: a recorded inode number may belong to someone else's namespace by now.
 */
export function pinnedNamespaces(l: ClusterLayout): number[] {
  const inodes: number[] = [];
  for (const m of hostMounts()) {
    if (m.fstype !== 'nsfs' || !under(l.stateDir, m.mountPoint)) continue;
    try {
      inodes.push(statSync(m.mountPoint).ino);
    } catch {
      // unmounted meanwhile
    }
  }
  return inodes;
}

/** Processes whose network or mount namespace is one of `inodes`. */
function pidsInNamespaces(inodes: number[]): number[] {
  if (inodes.length === 0) return [];
  const wanted = new Set(inodes.map(String));
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    for (const kind of ['net', 'mnt']) {
      try {
        const m = /\[(\d+)\]/.exec(readlinkSync(`/proc/${entry}/ns/${kind}`));
        if (m?.[1] && wanted.has(m[1])) {
          out.push(Number(entry));
          break;
        }
      } catch {
        // gone, or a kernel thread
      }
    }
  }
  return out;
}

/** Processes started with one of our files on their command line (found even without cgroup or ns). */
function pidsMentioning(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || Number(entry) === process.ppid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.split('\0').some((a) => a.includes(`${dir}/`))) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

function describe(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120)}`;
  } catch {
    return `${pid} (exited)`;
  }
}

/**
 * Kills what is in the cluster's namespaces without being in its cgroup (a `cluster exec` shell, a
 * `kubectl port-forward` run inside). A process that merely names a state file (say, `tail -f` of a
 * log) is only reported by leftovers(), never killed.
 */
export async function killNamespaceStragglers(inodes: number[]): Promise<number> {
  let killed = 0;
  for (let round = 0; round < 50; round++) {
    const pids = pidsInNamespaces(inodes);
    if (pids.length === 0) return killed;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // gone
      }
    }
    await sleep(100);
  }
  return killed;
}

/** Unmounts every host mount under the state directory, deepest first (the ns files, the ns dir). */
async function unmountAll(l: ClusterLayout): Promise<string[]> {
  const done: string[] = [];
  for (let round = 0; round < 5; round++) {
    const mounts = hostMounts()
      .filter((m) => under(l.stateDir, m.mountPoint))
      .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
    if (mounts.length === 0) return done;
    for (const m of mounts) {
      const r = await run('umount', ['-n', m.mountPoint], { allowFailure: true });
      if (r.code !== 0) await run('umount', ['-n', '-l', m.mountPoint], { allowFailure: true });
      done.push(m.mountPoint);
    }
  }
  return done;
}

function removeVarLibCni(l: ClusterLayout, created: boolean | undefined): void {
  if (!created) return;
  // Another cluster of ours may be using it as its mount point: leave it to the last one.
  const others = existsSync(l.stateRoot)
    ? readdirSync(l.stateRoot).filter(
        (n) => n !== l.name && existsSync(path.join(l.stateRoot, n, 'ns', 'mnt')),
      )
    : [];
  if (others.length > 0) return;
  try {
    rmdirSync('/var/lib/cni');
  } catch {
    // not empty: something else uses it now
  }
}

function removeIfEmpty(dir: string): void {
  try {
    if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // another cluster raced us
  }
}

function removeStateDir(l: ClusterLayout, keepData: boolean): void {
  if (hostMounts().some((m) => under(l.stateDir, m.mountPoint))) {
    throw new Error(`refusing to delete ${l.stateDir}: something is still mounted below it`);
  }
  if (!keepData) rmSync(l.stateDir, { recursive: true, force: true });
  removeIfEmpty(l.stateRoot);
}

export async function teardown(l: ClusterLayout, opts: DownOptions = {}): Promise<DownReport> {
  const log = opts.log ?? (() => {});
  const state = readState(l);
  // Only namespaces still pinned by our files: a recorded inode number may belong to someone else's
  // namespace by now (see leftovers()), and its processes must never be killed.
  const inodes = pinnedNamespaces(l);
  const cgroup = `/${l.cgroupName}`;
  let t0 = Date.now();
  const since = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const killed = (await killCgroupTree(cgroup)).length + (await killNamespaceStragglers(inodes));
  log(`killed ${killed} process(es) in ${since()}`);
  t0 = Date.now();
  const unmounted = await unmountAll(l);
  if (unmounted.length > 0)
    log(`unmounted ${unmounted.length} host mount(s), namespaces released, in ${since()}`);
  t0 = Date.now();
  await removeCgroupTree(cgroup);
  removeVarLibCni(l, state?.createdVarLibCni);
  log(`removed cgroups in ${since()}`);
  t0 = Date.now();
  removeStateDir(l, opts.keepData ?? false);
  if (!opts.keepData) log(`removed ${l.stateDir} in ${since()}`);
  if (opts.purge) {
    t0 = Date.now();
    rmSync(l.imageCacheDir, { recursive: true, force: true });
    removeIfEmpty(path.dirname(l.imageCacheDir));
    log(`removed the image store ${l.imageCacheDir} in ${since()}`);
  }
  const left = await leftovers(l, { keepData: opts.keepData ?? false });
  return { killed, unmounted, leftovers: left };
}

export interface LeftoverOptions {
  /** The state directory is expected to remain (down --keep-data, or a running cluster). */
  keepData?: boolean;
}

/** Everything of cluster `l` still on this machine: processes, mounts, cgroups, namespaces, dirs, rules. */
export async function leftovers(l: ClusterLayout, opts: LeftoverOptions = {}): Promise<string[]> {
  const out: string[] = [];
  const cgroup = `/${l.cgroupName}`;
  // A namespace's inode number names it only while it lives. Once our pinned files are unmounted (after
  // teardown killed everything inside), the kernel may give the number to someone else's namespace (the
  // API-server tier's `unshare --net`, say), so only namespaces still pinned here are looked for.
  const live = pinnedNamespaces(l);
  const pids = new Set([...pidsIn(cgroup), ...pidsInNamespaces(live), ...pidsMentioning(l.stateDir)]);
  for (const pid of pids) out.push(`process ${describe(pid)}`);
  const nsIds = new Set(live.map((i) => `[${i}]`));
  for (const m of hostMounts()) {
    if (under(l.stateDir, m.mountPoint) || [...nsIds].some((id) => m.root.endsWith(id))) {
      out.push(`mount ${m.mountPoint} (${m.fstype})`);
    }
  }
  for (const dir of strayCgroups(l.cgroupName)) out.push(`cgroup ${dir}`);
  if (!opts.keepData && existsSync(l.stateDir)) out.push(`directory ${l.stateDir}`);
  out.push(...(await hostNetworkLeftovers(l)));
  return out;
}

/**
 * The node's networking belongs inside its namespace: our links or rules for our ranges in the host
 * namespace would be a leak. (Other veths, KUBE- or CNI- rules of a real Docker or kubelet are not ours.)
 */
async function hostNetworkLeftovers(l: ClusterLayout): Promise<string[]> {
  const out: string[] = [];
  const links = await run('ip', ['-o', 'link', 'show'], { allowFailure: true });
  for (const line of links.stdout.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (name && /^(bz-node|bz-peer|bz0|bz-switch|bz-port\d+)$/.test(name)) out.push(`host link ${name}`);
  }
  const ranges = [l.network.podCidr, l.network.serviceCidr, l.network.nodeCidr.replace(/\.\d+\//, '.0/')];
  const rules = await run('iptables-save', [], { allowFailure: true });
  const ours = rules.stdout.split('\n').filter((r) => ranges.some((c) => r.includes(c)) || r.includes('bz0'));
  if (ours.length > 0)
    out.push(`host iptables: ${ours.length} rule(s) for the cluster's ranges, e.g. ${ours[0]}`);
  return out;
}
