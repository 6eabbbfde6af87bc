/**
 * Root filesystems from Debian. Two levels, both kept as tars in the cache:
 *
 *   base-<suite>   `debootstrap --variant=minbase <suite>`, once per suite (the slow part)
 *   <name>         that base, extracted; `apt-get update` + `apt-get install` of its packages;
 *                  its shell scripts run inside the chroot (users, layout, staging); then
 *                  rootfs/finish.sh (no package lists or caches, no host identity)
 *
 * keyed by what they are made of, so two stand-ins of one suite share one debootstrap, and an
 * image built on a root (plus an entrypoint, say) does not make the root again.
 *
 * Every step runs under `unshare --mount --pid --fork --kill-child`: the /proc and /dev mounted for
 * a chroot, and any process a package script starts, live in namespaces that end with the step,
 * so nothing stays mounted or running, also when a build fails or is killed.
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { buildEnv, run } from './exec.js';
import { cacheKey, fileSha256, shortKey, type KeyValue } from './key.js';
import { ASSETS_DIR, type CacheLayout } from './paths.js';

export const DEBIAN_MIRROR = process.env.BAZAR_DEBIAN_MIRROR || 'http://deb.debian.org/debian';
// Bump when this module's way of making a root changes what is in it.
const BASE_RECIPE = 1;
const ROOTFS_RECIPE = 2;
const FINISH_SCRIPT = path.join(ASSETS_DIR, 'rootfs', 'finish.sh');

export interface RootfsSpec {
  /** Names the cache entries, e.g. "node-standin". */
  name: string;
  suite: string;
  /** Installed with apt-get (--no-install-recommends) before the scripts run. */
  packages: string[];
  /** Scripts (absolute paths) run in this order with bash inside the chroot. */
  scripts: string[];
  /** Host files copied to /tmp/bazar-in/<name> for the scripts (removed by finish.sh). */
  files: Record<string, string>;
  /** Output name → directory inside the root that becomes that tar ("." for the whole root). */
  outputs: Record<string, string>;
}

export interface RootfsResult {
  key: string;
  /** Output name → tar path. */
  tars: Record<string, string>;
}

export interface RootfsRun {
  cache: CacheLayout;
  log: (line: string) => void;
  logFile: string;
  /** Make the root again even if its tars exist (the suite's packages moved on). */
  force?: boolean;
}

function baseKey(suite: string): string {
  return cacheKey({ recipe: BASE_RECIPE, suite, mirror: DEBIAN_MIRROR, variant: 'minbase' });
}

export async function rootfsKey(spec: RootfsSpec): Promise<string> {
  const files: Record<string, KeyValue> = {};
  for (const [name, file] of Object.entries(spec.files)) files[name] = await fileSha256(file);
  const scripts: KeyValue[] = [];
  for (const script of [...spec.scripts, FINISH_SCRIPT]) scripts.push(await fileSha256(script));
  return cacheKey({
    recipe: ROOTFS_RECIPE,
    base: baseKey(spec.suite),
    packages: [...spec.packages].sort(),
    scripts,
    files,
    outputs: spec.outputs,
  });
}

function tarPaths(cache: CacheLayout, spec: RootfsSpec, key: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(spec.outputs)) {
    out[name] = path.join(cache.rootfs, `${spec.name}@${shortKey(key)}.${name}.tar`);
  }
  return out;
}

// Steps see a clean environment: nothing of the caller's shell (locale, a desktop's settings,
// NODE_EXTRA_CA_CERTS) should shape the image. Proxies are how this machine reaches the mirror.
function chrootEnv(): NodeJS.ProcessEnv {
  const keep = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'];
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    DEBIAN_FRONTEND: 'noninteractive',
  };
  for (const k of keep) if (process.env[k]) env[k] = process.env[k];
  return env;
}

const NAMESPACES = ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child'];

/** A directory we may write into from the host: it must not be a link out of the root. */
async function realDirInside(root: string, rel: string): Promise<string> {
  const dir = path.join(root, rel);
  await fs.mkdir(dir, { recursive: true });
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory inside the root`);
  return dir;
}

/** argv inside the chroot, with its own /proc and the host's /dev, in namespaces of its own. */
async function chrootRun(root: string, argv: string[], logFile: string): Promise<void> {
  const mountDev = 'mount --rbind /dev "$1/dev" && root="$1" && shift && exec chroot "$root" "$@"';
  await run(
    'unshare',
    [...NAMESPACES, `--mount-proc=${path.join(root, 'proc')}`, 'sh', '-c', mountDev, 'sh', root, ...argv],
    { env: chrootEnv(), logFile },
  );
}

async function runScript(root: string, script: string, logFile: string): Promise<void> {
  const inside = `/tmp/bazar-in/${path.basename(path.dirname(script))}-${path.basename(script)}`;
  await fs.copyFile(script, path.join(root, inside));
  await chrootRun(root, ['/bin/bash', inside], logFile);
}

async function installPackages(root: string, packages: string[], logFile: string): Promise<void> {
  if (packages.length === 0) return;
  // The base's package lists are as old as the base; a stable suite drops superseded versions
  // from the mirror, so read the current lists first.
  const script = `apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages.join(' ')}`;
  await chrootRun(root, ['/bin/sh', '-ec', script], logFile);
}

async function tarDir(dir: string, dest: string, logFile: string): Promise<void> {
  const tmp = `${dest}.part`;
  // Numeric owners and xattrs (file capabilities) as they are; the runtime provides /dev, /proc, /sys.
  const args = ['--create', '--file', tmp, '--numeric-owner', '--xattrs', '--xattrs-include=*'];
  args.push('--exclude=./dev/*', '--exclude=./proc/*', '--exclude=./sys/*', '--exclude=./bazar-stage');
  await run('tar', [...args, '-C', dir, '.'], { env: buildEnv(), logFile });
  await fs.rename(tmp, dest);
}

async function extractTar(tar: string, dir: string, logFile: string): Promise<void> {
  await run(
    'tar',
    ['--extract', '--file', tar, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', dir],
    {
      env: buildEnv(),
      logFile,
    },
  );
}

/** A scratch directory under work/, removed again whatever `fn` does. */
async function inWorkDir<T>(cache: CacheLayout, name: string, fn: (root: string) => Promise<T>): Promise<T> {
  const work = path.join(cache.work, name);
  const root = path.join(work, 'root');
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(root, { recursive: true });
  try {
    return await fn(root);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** The minbase of a suite as a tar, debootstrapped once. */
async function ensureBase(suite: string, r: RootfsRun): Promise<string> {
  const tar = path.join(r.cache.rootfs, `base-${suite}@${shortKey(baseKey(suite))}.root.tar`);
  if (existsSync(tar)) return tar;
  const started = Date.now();
  r.log(`base-${suite}: debootstrap --variant=minbase ${suite}`);
  const debs = path.join(r.cache.debs, suite);
  await fs.mkdir(debs, { recursive: true });
  await fs.mkdir(r.cache.rootfs, { recursive: true });
  await inWorkDir(r.cache, `base-${suite}`, async (root) => {
    const args = ['debootstrap', '--variant=minbase', `--cache-dir=${debs}`, suite, root, DEBIAN_MIRROR];
    await run('unshare', [...NAMESPACES, ...args], { env: chrootEnv(), logFile: r.logFile });
    await tarDir(root, tar, r.logFile);
  });
  await removeStale(r.cache.rootfs, `base-${suite}`, new Set([tar]));
  r.log(`base-${suite}: ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return tar;
}

/** This machine's resolver for apt inside the chroot (the base keeps the one of its debootstrap day). */
async function useHostResolver(root: string): Promise<void> {
  const file = path.join(await realDirInside(root, 'etc'), 'resolv.conf');
  // Never write through a link: it would point at the host's own files.
  await fs.rm(file, { force: true });
  await fs.copyFile('/etc/resolv.conf', file);
}

async function makeRootfs(spec: RootfsSpec, r: RootfsRun, tars: Record<string, string>): Promise<void> {
  const base = await ensureBase(spec.suite, r);
  await inWorkDir(r.cache, `rootfs-${spec.name}`, async (root) => {
    await extractTar(base, root, r.logFile);
    await useHostResolver(root);
    const inbox = await realDirInside(root, 'tmp/bazar-in');
    for (const [name, file] of Object.entries(spec.files)) await fs.copyFile(file, path.join(inbox, name));
    await installPackages(root, spec.packages, r.logFile);
    for (const script of spec.scripts) await runScript(root, script, r.logFile);
    await runScript(root, FINISH_SCRIPT, r.logFile);
    for (const [name, sub] of Object.entries(spec.outputs))
      await tarDir(path.join(root, sub), tars[name]!, r.logFile);
  });
}

/** The tars of a root, from the cache or made now. */
export async function ensureRootfs(spec: RootfsSpec, r: RootfsRun): Promise<RootfsResult> {
  const key = await rootfsKey(spec);
  const tars = tarPaths(r.cache, spec, key);
  if (!r.force && Object.values(tars).every((t) => existsSync(t))) return { key, tars };
  await fs.mkdir(r.cache.rootfs, { recursive: true });
  const started = Date.now();
  const what = spec.packages.length > 0 ? ` + ${spec.packages.join(', ')}` : '';
  r.log(`${spec.name}: root filesystem from ${spec.suite}${what}`);
  await makeRootfs(spec, r, tars);
  await removeStale(r.cache.rootfs, spec.name, new Set(Object.values(tars)));
  r.log(`${spec.name}: root filesystem ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { key, tars };
}

/**
 * Deletes the other cache entries of `name` ("<name>@<key>..."), so the cache holds one of each and
 * a changed input does not leave the old tar behind. With `graceMs`, only those not modified (made or,
 * for archives, used: ensureImage touches them) within it: another process may still be about to load
 * one.
 */
export async function removeStale(
  dir: string,
  name: string,
  keep: ReadonlySet<string>,
  opts: { graceMs?: number } = {},
): Promise<void> {
  const before = Date.now() - (opts.graceMs ?? 0);
  for (const entry of await fs.readdir(dir).catch(() => [] as string[])) {
    const full = path.join(dir, entry);
    if (!entry.startsWith(`${name}@`) || keep.has(full)) continue;
    if (opts.graceMs !== undefined) {
      const stat = await fs.stat(full).catch(() => undefined);
      if (!stat || stat.mtimeMs > before) continue;
    }
    await fs.rm(full, { force: true });
  }
}
