/**
 * Where things are: the repository (build context, Dockerfile, skaffold.yaml), this tool's assets
 * (C source, entrypoints, chroot scripts) and the cache outside the repository.
 *
 * Cache layout, under ${BAZAR_CACHE_DIR:-~/.cache/bazar}/images:
 *   images.json          the index: one record per image (name, ref, archive, key)
 *   chart-values.yaml    the helm values that make the chart use these images
 *   archives/            docker-archive tars, one per image, named <name>-<key prefix>.tar
 *   rootfs/              debootstrapped root filesystems as tars, keyed by what they are made of
 *   debs/<suite>/        debootstrap's package cache (a changed package list downloads only the change)
 *   downloads/           pinned downloads (the npm tarball)
 *   storage/             buildah's storage (graph root): base images and the --layers cache
 *   work/                scratch space of one build; removed afterwards
 *   logs/                the full output of the last build of each image
 *   scopes/<scope>/      images.json, chart-values.yaml and archives/ of a run with BAZAR_IMAGE_SCOPE
 *
 * BAZAR_IMAGE_SCOPE names a run on another source tree (the skaffold tier builds an edited copy of the
 * repository while other tests load the repository's images): its index and archives are its own, so it
 * never replaces or deletes what the repository's runs made, which it still reads (archives/, when the
 * key matches). Root filesystems, packages and buildah's storage stay shared.
 */
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  // Compiled: dist/tools/images/src/paths.js; from source: tools/images/src/paths.ts.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'skaffold.yaml')) && existsSync(path.join(dir, 'tools', 'images'))) {
      return dir;
    }
    dir = path.dirname(dir);
  }
  throw new Error('tools/images: cannot find the repository root (no skaffold.yaml above this file)');
}

export const REPO_ROOT = findRepoRoot();
/** C source, entrypoints and chroot scripts of the images (not compiled by tsc). */
export const ASSETS_DIR = path.join(REPO_ROOT, 'tools', 'images');

export interface CacheLayout {
  root: string;
  index: string;
  chartValues: string;
  archives: string;
  /** With a scope: the unscoped archives, read when they hold the key, never written. */
  sharedArchives?: string;
  rootfs: string;
  debs: string;
  downloads: string;
  storage: string;
  runRoot: string;
  work: string;
  logs: string;
  lock: string;
}

export function cacheLayout(env: NodeJS.ProcessEnv = process.env): CacheLayout {
  const base = env.BAZAR_CACHE_DIR || path.join(os.homedir(), '.cache', 'bazar');
  const root = path.join(base, 'images');
  const scope = env.BAZAR_IMAGE_SCOPE || undefined;
  if (scope !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(scope)) {
    throw new Error(`BAZAR_IMAGE_SCOPE must be lowercase letters, digits and dashes (got "${scope}")`);
  }
  const own = scope ? path.join(root, 'scopes', scope) : root;
  return {
    root,
    index: path.join(own, 'images.json'),
    chartValues: path.join(own, 'chart-values.yaml'),
    archives: path.join(own, 'archives'),
    ...(scope ? { sharedArchives: path.join(root, 'archives') } : {}),
    rootfs: path.join(root, 'rootfs'),
    debs: path.join(root, 'debs'),
    downloads: path.join(root, 'downloads'),
    storage: path.join(root, 'storage'),
    // buildah's run root holds locks and mount bookkeeping that must not outlive a reboot: /run is
    // a tmpfs on a normal machine. One per cache, so two caches never share bookkeeping.
    runRoot: path.join('/run', 'bazar-images', hashPath(root)),
    work: path.join(root, 'work'),
    logs: path.join(root, 'logs'),
    lock: path.join(root, '.lock'),
  };
}

/** A short, stable name for a directory (used to keep run roots of different caches apart). */
function hashPath(p: string): string {
  let h = 0x811c9dc5;
  for (const ch of p) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}
