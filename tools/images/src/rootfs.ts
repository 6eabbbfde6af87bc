/**
 * Root filesystems from Debian: `debootstrap --variant=minbase` of a suite, then shell scripts run
 * inside its chroot (users, packages from that suite, staging), then rootfs/finish.sh (no caches,
 * no host identity). The result is kept as tars in the cache, keyed by what the root is made of, so
 * an image built on it (plus an entrypoint, say) does not debootstrap again.
 *
 * Every step runs under `unshare --mount --pid --fork --kill-child`: the /proc that debootstrap and
 * the scripts mount, and any process a package script starts, live in namespaces that end with the
 * step, so nothing is left mounted or running, also when the build fails or is killed.
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { buildEnv, run } from './exec.js';
import { cacheKey, fileSha256, shortKey, type KeyValue } from './key.js';
import { ASSETS_DIR, type CacheLayout } from './paths.js';

export const DEBIAN_MIRROR = process.env.BAZAR_DEBIAN_MIRROR || 'http://deb.debian.org/debian';
// Bump when this module's way of making a root changes what is in it.
const ROOTFS_RECIPE = 1;
const FINISH_SCRIPT = path.join(ASSETS_DIR, 'rootfs', 'finish.sh');

export interface RootfsSpec {
  /** Names the cache entries, e.g. "node-standin". */
  name: string;
  suite: string;
  /** Packages debootstrap installs beside minbase. */
  include: string[];
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

async function digests(paths: readonly string[]): Promise<string[]> {
  return Promise.all(paths.map(fileSha256));
}

export async function rootfsKey(spec: RootfsSpec): Promise<string> {
  const fileDigests: Record<string, KeyValue> = {};
  for (const [name, file] of Object.entries(spec.files)) fileDigests[name] = await fileSha256(file);
  return cacheKey({
    recipe: ROOTFS_RECIPE,
    suite: spec.suite,
    mirror: DEBIAN_MIRROR,
    variant: 'minbase',
    include: [...spec.include].sort(),
    scripts: await digests([...spec.scripts, FINISH_SCRIPT]),
    files: fileDigests,
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

// Steps see a clean environment: nothing of the caller's shell (locale, proxies of a desktop,
// NODE_EXTRA_CA_CERTS) should shape the image.
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

async function debootstrap(spec: RootfsSpec, root: string, debs: string, logFile: string): Promise<void> {
  const include = spec.include.length > 0 ? [`--include=${spec.include.join(',')}`] : [];
  await run(
    'unshare',
    [
      ...NAMESPACES,
      'debootstrap',
      '--variant=minbase',
      ...include,
      `--cache-dir=${debs}`,
      spec.suite,
      root,
      DEBIAN_MIRROR,
    ],
    { env: chrootEnv(), logFile },
  );
}

/** A directory we may write into from the host: it must not be a link out of the root. */
async function realDirInside(root: string, rel: string): Promise<string> {
  const dir = path.join(root, rel);
  await fs.mkdir(dir, { recursive: true });
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory inside the root`);
  return dir;
}

async function runInChroot(root: string, script: string, logFile: string): Promise<void> {
  const inside = `/tmp/bazar-in/${path.basename(path.dirname(script))}-${path.basename(script)}`;
  await fs.copyFile(script, path.join(root, inside));
  await run(
    'unshare',
    [...NAMESPACES, `--mount-proc=${path.join(root, 'proc')}`, 'chroot', root, '/bin/bash', inside],
    {
      env: chrootEnv(),
      logFile,
    },
  );
}

async function tarDir(dir: string, dest: string, logFile: string): Promise<void> {
  const tmp = `${dest}.part`;
  // Numeric owners and xattrs (file capabilities) as they are; the runtime mounts /dev, /proc, /sys.
  await run(
    'tar',
    [
      '--create',
      '--file',
      tmp,
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include=*',
      '--exclude=./dev/*',
      '--exclude=./proc/*',
      '--exclude=./sys/*',
      '--exclude=./bazar-stage',
      '-C',
      dir,
      '.',
    ],
    { env: buildEnv(), logFile },
  );
  await fs.rename(tmp, dest);
}

async function makeRootfs(
  spec: RootfsSpec,
  cache: CacheLayout,
  tars: Record<string, string>,
  logFile: string,
) {
  const work = path.join(cache.work, `rootfs-${spec.name}`);
  const root = path.join(work, 'root');
  const debs = path.join(cache.debs, spec.suite);
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(root, { recursive: true });
  await fs.mkdir(debs, { recursive: true });
  try {
    await debootstrap(spec, root, debs, logFile);
    const inbox = await realDirInside(root, 'tmp/bazar-in');
    for (const [name, file] of Object.entries(spec.files)) await fs.copyFile(file, path.join(inbox, name));
    for (const script of spec.scripts) await runInChroot(root, script, logFile);
    await runInChroot(root, FINISH_SCRIPT, logFile);
    for (const [name, sub] of Object.entries(spec.outputs))
      await tarDir(path.join(root, sub), tars[name]!, logFile);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** The tars of a root, from the cache or made now. */
export async function ensureRootfs(
  spec: RootfsSpec,
  cache: CacheLayout,
  log: (line: string) => void,
  logFile: string,
): Promise<RootfsResult> {
  const key = await rootfsKey(spec);
  const tars = tarPaths(cache, spec, key);
  if (Object.values(tars).every((t) => existsSync(t))) return { key, tars };
  await fs.mkdir(cache.rootfs, { recursive: true });
  const started = Date.now();
  log(
    `${spec.name}: debootstrap ${spec.suite} (minbase${spec.include.length ? ` + ${spec.include.join(', ')}` : ''})`,
  );
  await makeRootfs(spec, cache, tars, logFile);
  await removeStale(cache.rootfs, spec.name, new Set(Object.values(tars)));
  log(`${spec.name}: root filesystem ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { key, tars };
}

/**
 * Deletes the other cache entries of `name` ("<name>@<key>..."), so the cache holds one of each and
 * a changed input does not leave the old tar behind.
 */
export async function removeStale(dir: string, name: string, keep: ReadonlySet<string>): Promise<void> {
  for (const entry of await fs.readdir(dir).catch(() => [] as string[])) {
    const full = path.join(dir, entry);
    if (entry.startsWith(`${name}@`) && !keep.has(full)) await fs.rm(full, { force: true });
  }
}
