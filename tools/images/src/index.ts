/**
 * Builds every image the local Kubernetes cluster needs, with buildah, into docker-archive tars
 * that `ctr -n k8s.io images import` accepts, cached outside the repository (see paths.ts):
 *
 *   pause                 localhost/bazar-standin/pause:3.10               sandbox image (gcc -static)
 *   node-standin          localhost/bazar-standin/node:20-bookworm-slim    base of our Dockerfile
 *   front|catalog|order   docker.io/library/bazar-<svc>:<input digest>     our Dockerfile, as skaffold.yaml says
 *   postgres-standin      localhost/bazar-standin/postgres:18              Debian's postgresql-18 + our entrypoint
 *   postgres-patroni      docker.io/library/bazar-postgres-patroni:<digest> images/postgres-patroni/Dockerfile, on it
 *   curl-standin          localhost/bazar-standin/curl:8.11.1              the chart's helm test image
 *   busybox-standin       localhost/bazar-standin/busybox:1.37             local-path-provisioner's helper pods
 *   coredns               localhost/bazar-local/coredns:<version>          built from source by scripts/k8s-tools.sh
 *   local-path-provisioner localhost/bazar-local/local-path-provisioner:<version>
 *
 * An image whose key (a digest of what it is built from) has an archive is not built again. One
 * build runs at a time per cache (a lock directory); a second caller waits for it.
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Buildah } from './buildah.js';
import { cacheKey, shortKey, type KeyValue } from './key.js';
import { ensurePackages } from './packages.js';
import { cacheLayout, type CacheLayout } from './paths.js';
import { allRecipes, type Recipe } from './recipes.js';
import { removeStale } from './rootfs.js';
import type { ImageRecord } from './types.js';
import { chartImageValues, chartValuesYaml } from './values.js';

export type { ImageRecord } from './types.js';
export { BUILD_ONLY_IMAGES } from './types.js';
export { chartImageValues, chartValuesYaml, helmSetArgs, splitRef } from './values.js';
export { cacheLayout } from './paths.js';
export {
  ensurePackages as ensureImageBuildPackages,
  HOST_PACKAGES as IMAGE_BUILD_PACKAGES,
} from './packages.js';

export interface BuildOptions {
  /** Build only these images (and what they are built on); default: all. */
  only?: string[];
  log?: (line: string) => void;
  /** Rebuild these even if their archive is current (the suites' packages moved on, say). */
  rebuild?: string[];
  /**
   * Only the images that need nothing from scripts/k8s-tools.sh, so CI can build them while that
   * toolchain compiles (the rest follow once it is there).
   */
  withoutToolchain?: boolean;
}

export interface ImageIndex {
  version: 1;
  storage: string;
  images: ImageRecord[];
  chartValues: Record<string, string>;
}

function defaultLog(line: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[images ${t}] ${line}\n`);
}

function secondsSince(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

/** The recipes to run for `only`, with everything they are built on, in build order. */
export function selectRecipes(recipes: readonly Recipe[], only?: readonly string[]): Recipe[] {
  const byName = new Map(recipes.map((r) => [r.name, r]));
  if (!only || only.length === 0) return [...recipes];
  const wanted = new Set<string>();
  const want = (name: string): void => {
    const r = byName.get(name);
    if (!r) throw new Error(`unknown image "${name}"; known: ${[...byName.keys()].join(', ')}`);
    if (wanted.has(name)) return;
    wanted.add(name);
    r.deps.forEach(want);
  };
  only.forEach(want);
  return recipes.filter((r) => wanted.has(r.name));
}

// ---------------------------------------------------------------- lock

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquireLock(cache: CacheLayout, log: (line: string) => void): Promise<void> {
  let told = false;
  for (;;) {
    try {
      await fs.mkdir(cache.lock);
      await fs.writeFile(path.join(cache.lock, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(await fs.readFile(path.join(cache.lock, 'pid'), 'utf8').catch(() => '0'));
    if (holder > 0 && !pidAlive(holder)) {
      // A build that was killed: its lock means nothing now.
      await fs.rm(cache.lock, { recursive: true, force: true });
      continue;
    }
    if (!told) log(`waiting for the build in process ${holder || '?'} (lock ${cache.lock})`);
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function withLock<T>(
  cache: CacheLayout,
  log: (line: string) => void,
  fn: () => Promise<T>,
): Promise<T> {
  await fs.mkdir(cache.root, { recursive: true });
  await acquireLock(cache, log);
  try {
    return await fn();
  } finally {
    await fs.rm(cache.lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- index

export async function readIndex(cache: CacheLayout = cacheLayout()): Promise<ImageIndex | undefined> {
  try {
    return JSON.parse(await fs.readFile(cache.index, 'utf8')) as ImageIndex;
  } catch {
    return undefined;
  }
}

async function writeIndex(cache: CacheLayout, records: ImageRecord[]): Promise<void> {
  const chartValues = chartImageValues(records);
  const index: ImageIndex = { version: 1, storage: cache.storage, images: records, chartValues };
  await fs.writeFile(`${cache.index}.part`, `${JSON.stringify(index, null, 2)}\n`);
  await fs.rename(`${cache.index}.part`, cache.index);
  await fs.writeFile(cache.chartValues, chartValuesYaml(chartValues));
}

/** Records of the last index whose archives still exist, then this run's, by name. */
async function mergedRecords(cache: CacheLayout, built: ReadonlyMap<string, ImageRecord>, order: string[]) {
  const previous = (await readIndex(cache))?.images ?? [];
  const byName = new Map<string, ImageRecord>();
  for (const r of previous) if (existsSync(r.archive)) byName.set(r.name, r);
  for (const [name, r] of built) byName.set(name, r);
  return [...byName.values()].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
}

// ---------------------------------------------------------------- one image

interface Planned {
  recipe: Recipe;
  key: string;
  ref: string;
  /** Where the archive is read from: ownArchive, or a scoped run's shared one of the same key. */
  archive: string;
  /** Where this run writes it. */
  ownArchive: string;
}

/** An image's key: what its recipe reads (inputs()) and the keys of the images it is built on. */
export async function recipeKey(recipe: Recipe, depKeys: (name: string) => string): Promise<string> {
  const deps: Record<string, KeyValue> = {};
  for (const d of recipe.deps) deps[d] = depKeys(d);
  return cacheKey({ image: recipe.name, inputs: await recipe.inputs(), deps });
}

async function plan(
  recipe: Recipe,
  cache: CacheLayout,
  done: ReadonlyMap<string, ImageRecord>,
): Promise<Planned> {
  const key = await recipeKey(recipe, (d) => done.get(d)!.key);
  const file = `${recipe.name}@${shortKey(key)}.tar`;
  const own = path.join(cache.archives, file);
  // A scoped run (BAZAR_IMAGE_SCOPE) reads the repository's archive of the same key, never writes it.
  const shared = cache.sharedArchives && path.join(cache.sharedArchives, file);
  const archive = !existsSync(own) && shared && existsSync(shared) ? shared : own;
  return { recipe, key, ref: recipe.ref(key), archive, ownArchive: own };
}

/** A base image must be in our storage to build on; after a "clean" it comes back from its archive. */
async function ensureInStorage(buildah: Buildah, rec: ImageRecord): Promise<void> {
  if (!(await buildah.imageExists(rec.ref))) await buildah.pullArchive(rec.archive);
}

/** Other tags of the same repository in our storage are older builds: their layers stay cached. */
async function untagOlder(buildah: Buildah, ref: string): Promise<void> {
  const repo = ref.slice(0, ref.lastIndexOf(':'));
  for (const name of await buildah.imageNames()) {
    if (name !== ref && name.slice(0, name.lastIndexOf(':')) === repo) await buildah.removeImage(name);
  }
}

async function buildOne(
  p: Planned,
  cache: CacheLayout,
  buildah: Buildah,
  done: ReadonlyMap<string, ImageRecord>,
  log: (line: string) => void,
  force: boolean,
): Promise<void> {
  const logFile = path.join(cache.logs, `${p.recipe.name}.log`);
  await fs.writeFile(logFile, `# ${p.recipe.name} ${p.ref} key ${p.key} ${new Date().toISOString()}\n`);
  const b = buildah.withLog(logFile);
  for (const d of p.recipe.deps) await ensureInStorage(b, done.get(d)!);
  try {
    await p.recipe.build({ cache, buildah: b, log, logFile, key: p.key, ref: p.ref, deps: done, force });
    await fs.mkdir(cache.archives, { recursive: true });
    const part = `${p.archive}.part`;
    await b.pushArchive(p.ref, part);
    await fs.rename(part, p.archive);
  } catch (err) {
    throw new Error(`image ${p.recipe.name}: ${(err as Error).message}\n(full log: ${logFile})`, {
      cause: err,
    });
  }
  await removeStale(cache.archives, p.recipe.name, new Set([p.archive]), { graceMs: ARCHIVE_GRACE_MS });
  await untagOlder(b, p.ref);
}

const MAX_BUILD_ATTEMPTS = 3;

/**
 * An older archive of an image stays this long after it was last made or used: a test of the same run
 * may load it while another rebuilds the image from changed sources (the skaffold tier edits a copy of
 * the repository, a new key for every service image, while the NetworkPolicy tier loads the run's
 * images: CI of 2026-12-07 failed on `image archive .../catalog@14ffa46930a1.tar does not exist`).
 */
const ARCHIVE_GRACE_MS = 3 * 3600_000;

/**
 * Builds, then checks the inputs again: in a shared working tree a file can change while the build
 * reads it, and an archive must never carry a key its content does not match. Changed inputs mean
 * another build, under the new key.
 */
async function buildStable(
  first: Planned,
  cache: CacheLayout,
  buildah: Buildah,
  done: ReadonlyMap<string, ImageRecord>,
  log: (line: string) => void,
  force: boolean,
): Promise<Planned> {
  let p = first;
  for (let attempt = 1; ; attempt++) {
    await buildOne(p, cache, buildah, done, log, force && attempt === 1);
    const after = await plan(p.recipe, cache, done);
    if (after.key === p.key) return p;
    await fs.rm(p.archive, { force: true });
    await buildah.removeImage(p.ref);
    if (attempt >= MAX_BUILD_ATTEMPTS) {
      throw new Error(`image ${p.recipe.name}: its sources kept changing during ${attempt} builds`);
    }
    log(`${p.recipe.name}: sources changed during the build; building again as ${after.ref}`);
    p = after;
  }
}

/**
 * The layer cache grows by the changed steps on every source change. Once all `bud` builds ran in
 * this run, every cache image their logs name (used or made) stays; older unnamed ones go. Their
 * layers stay as long as an image still uses them.
 */
async function pruneLayerCache(
  buildah: Buildah,
  logFiles: readonly string[],
  runStart: number,
  log: (line: string) => void,
): Promise<void> {
  const keep = new Set<string>();
  for (const file of logFiles) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    for (const m of text.matchAll(/^--> (?:Using cache )?([0-9a-f]{11,64})\s*$/gm))
      keep.add(m[1]!.slice(0, 11));
  }
  let removed = 0;
  for (const img of await buildah.unnamedImages()) {
    if (img.created * 1000 >= runStart || keep.has(img.id.slice(0, 11))) continue;
    await buildah.removeImage(img.id);
    removed++;
  }
  if (removed > 0) log(`layer cache: removed ${removed} images no build uses any more`);
}

async function sizeMiB(file: string): Promise<string> {
  return `${((await fs.stat(file)).size / 1048576).toFixed(0)} MiB`;
}

// ---------------------------------------------------------------- entry point

function assertRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('tools/images builds need root (debootstrap, chroot, buildah on its own storage)');
  }
}

interface RunState {
  cache: CacheLayout;
  buildah: Buildah;
  log: (line: string) => void;
  done: Map<string, ImageRecord>;
  /** Images built with `bud --layers` in this run. */
  layerBuilds: Set<string>;
}

/** One image: its archive from the cache, or built now. */
async function ensureImage(recipe: Recipe, state: RunState, rebuild: boolean): Promise<void> {
  const { cache, buildah, log, done } = state;
  const t0 = Date.now();
  let p = await plan(recipe, cache, done);
  if (existsSync(p.archive) && !rebuild) {
    log(`${recipe.name}: cached ${p.ref} (${await sizeMiB(p.archive)})`);
    const now = new Date();
    await fs.utimes(p.archive, now, now).catch(() => undefined); // used: see ARCHIVE_GRACE_MS
  } else {
    log(`${recipe.name}: building ${p.ref}`);
    p = await buildStable({ ...p, archive: p.ownArchive }, cache, buildah, done, log, rebuild);
    log(`${recipe.name}: built in ${secondsSince(t0)} (${await sizeMiB(p.archive)})`);
    if (recipe.layerCache) state.layerBuilds.add(recipe.name);
  }
  done.set(recipe.name, { name: recipe.name, ref: p.ref, archive: p.archive, key: p.key });
}

export async function buildImages(opts: BuildOptions = {}): Promise<ImageRecord[]> {
  const log = opts.log ?? defaultLog;
  const cache = cacheLayout();
  assertRoot();
  await ensurePackages(log);
  return withLock(cache, log, async () => {
    for (const dir of [cache.archives, cache.logs, cache.work]) await fs.mkdir(dir, { recursive: true });
    const buildah = new Buildah(cache);
    // Nothing but our builds uses this storage: any container in it was left by a killed build.
    await buildah.removeAllContainers();
    const recipes = await allRecipes(cache);
    const state: RunState = { cache, buildah, log, done: new Map(), layerBuilds: new Set() };
    const runStart = Date.now();
    try {
      const selected = selectRecipes(recipes, opts.only).filter(
        (r) => !opts.withoutToolchain || !r.needsToolchain,
      );
      for (const recipe of selected) {
        await ensureImage(recipe, state, opts.rebuild?.includes(recipe.name) ?? false);
      }
      const layered = recipes.filter((r) => r.layerCache).map((r) => r.name);
      if (layered.length > 0 && layered.every((n) => state.layerBuilds.has(n))) {
        const logs = layered.map((n) => path.join(cache.logs, `${n}.log`));
        await pruneLayerCache(buildah, logs, runStart, log);
      }
    } finally {
      // Also after a failure: what was built is in the index, and no scratch space stays.
      await fs.rm(cache.work, { recursive: true, force: true });
      const order = recipes.map((r) => r.name);
      await writeIndex(cache, await mergedRecords(cache, state.done, order));
    }
    const requested = opts.only && opts.only.length > 0 ? new Set(opts.only) : undefined;
    return [...state.done.values()].filter((r) => !requested || requested.has(r.name));
  });
}

/** Removes our buildah storage and everything cached (the next build starts from nothing). */
export async function cleanImages(log: (line: string) => void = defaultLog): Promise<void> {
  const cache = cacheLayout();
  assertRoot();
  await withLock(cache, log, async () => {
    const buildah = new Buildah(cache);
    await buildah.removeAllContainers();
    await buildah.run(['umount', '--all']).catch(() => undefined);
    await buildah.run(['rmi', '--all', '--force']).catch(() => undefined);
    for (const dir of [cache.storage, cache.runRoot, cache.archives, cache.rootfs, cache.work, cache.logs]) {
      await fs.rm(dir, { recursive: true, force: true });
    }
    await fs.rm(cache.index, { force: true });
    await fs.rm(cache.chartValues, { force: true });
    log(`removed ${cache.root} (kept downloads/ and debs/, which are keyed by name and version)`);
  });
}
