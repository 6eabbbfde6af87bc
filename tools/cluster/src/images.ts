/**
 * Images for the node. Nothing is pulled (no registry here): tools/images builds every image as a
 * docker-archive and we import the archives into containerd's `k8s.io` namespace, where the CRI
 * plugin looks for them. Pods must therefore use `imagePullPolicy: IfNotPresent` (or Never) with a
 * non-latest tag.
 */
import { existsSync } from 'node:fs';
import { BUILD_ONLY_IMAGES, buildImages, type ImageRecord } from '../../images/src/index.js';
export { ensureImageBuildPackages } from '../../images/src/index.js';
import type { ClusterLayout } from './layout.js';
import { ctrArgv } from './containerd.js';
import { runIn } from './exec.js';

export { buildImages, type ImageRecord };

/** The images the cluster itself needs, by tools/images' names. */
export const CLUSTER_IMAGES = ['pause', 'coredns', 'local-path-provisioner', 'busybox-standin'] as const;

export interface ClusterImages {
  pause: ImageRecord;
  coredns: ImageRecord;
  localPathProvisioner: ImageRecord;
  busybox: ImageRecord;
}

/** Every image a pod may run (all of tools/images but the build-only bases such as node-standin). */
export async function podImages(log?: (line: string) => void): Promise<ImageRecord[]> {
  const buildOnly = new Set(BUILD_ONLY_IMAGES);
  return (await buildImages(log ? { log } : {})).filter((r) => !buildOnly.has(r.name));
}

function pick(records: ImageRecord[], name: string): ImageRecord {
  const found = records.find((r) => r.name === name);
  if (!found)
    throw new Error(
      `tools/images returned no '${name}' image (got ${records.map((r) => r.name).join(', ')})`,
    );
  return found;
}

export async function clusterImages(log?: (line: string) => void): Promise<ClusterImages> {
  const records = await buildImages({ only: [...CLUSTER_IMAGES], ...(log ? { log } : {}) });
  return {
    pause: pick(records, 'pause'),
    coredns: pick(records, 'coredns'),
    localPathProvisioner: pick(records, 'local-path-provisioner'),
    busybox: pick(records, 'busybox-standin'),
  };
}

/** References containerd already holds, so an import can be skipped. */
export async function importedRefs(l: ClusterLayout): Promise<Set<string>> {
  const out = await runIn(l.ns, ctrArgv(l, ['images', 'list', '--quiet']));
  return new Set(
    out.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/**
 * Imports docker-archives into the node's containerd (k8s.io namespace) and checks that each record's
 * reference is then present; records already present are skipped.
 */
export async function importImages(l: ClusterLayout, records: ImageRecord[]): Promise<string[]> {
  const present = await importedRefs(l);
  const todo = records.filter((r) => !present.has(r.ref) && !present.has(normalise(r.ref)));
  for (const archive of new Set(todo.map((r) => r.archive))) {
    if (!existsSync(archive)) throw new Error(`image archive ${archive} does not exist`);
    await runIn(l.ns, ctrArgv(l, ['images', 'import', archive]), { timeoutMs: 600_000 });
  }
  const after = await importedRefs(l);
  const missing = records.filter((r) => !after.has(r.ref) && !after.has(normalise(r.ref)));
  if (missing.length > 0) {
    throw new Error(
      `after import containerd lacks ${missing.map((r) => r.ref).join(', ')} (has: ${[...after].join(', ')})`,
    );
  }
  await pruneOlderTags(l, records, after);
  return todo.map((r) => r.ref);
}

/** `repo` of `repo:tag` (undefined for digests and untagged names). */
function repository(ref: string): string | undefined {
  if (ref.includes('@')) return undefined;
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : undefined;
}

/**
 * The image store outlives clusters (see layout.ts), and our images' tags change with every source
 * change: keep one tag per repository, the one just loaded, so the store does not grow without bound.
 */
async function pruneOlderTags(l: ClusterLayout, records: ImageRecord[], present: Set<string>): Promise<void> {
  const current = new Set(records.flatMap((r) => [r.ref, normalise(r.ref)]));
  const repos = new Set(records.map((r) => repository(normalise(r.ref))).filter(Boolean));
  const stale = [...present].filter((ref) => !current.has(ref) && repos.has(repository(ref)));
  if (stale.length > 0) await runIn(l.ns, ctrArgv(l, ['images', 'delete', ...stale]), { timeoutMs: 120_000 });
}

/** containerd's name for a reference without a registry host (docker.io/library/...). */
export function normalise(ref: string): string {
  const first = ref.split('/')[0] ?? '';
  const hasHost = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost) return ref;
  return ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

/** Imports docker-archives whose references are not known in advance; returns what ctr imported. */
export async function importArchives(l: ClusterLayout, archives: string[]): Promise<string[]> {
  const imported: string[] = [];
  for (const archive of archives) {
    if (!existsSync(archive)) throw new Error(`image archive ${archive} does not exist`);
    const out = await runIn(l.ns, ctrArgv(l, ['images', 'import', archive]), { timeoutMs: 600_000 });
    // ctr prints "unpacking <ref> (sha256:...)...done" per image.
    for (const m of out.stdout.matchAll(/unpacking (\S+) \(/g)) if (m[1]) imported.push(m[1]);
  }
  return imported;
}
