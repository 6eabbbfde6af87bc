/**
 * The helm values that make charts/bazar use the images built here, and nothing else: the chart's
 * defaults keep pointing at the official images, the tier overrides only these.
 *
 * How the chart turns them into image references (templates/_helpers.tpl):
 *   services:     bazar.image          → "<image.registry>/<repository>:<tag>", or "<repository>:<tag>"
 *                                        when image.registry is empty (the default, kept here)
 *   third-party:  bazar.thirdPartyImage → "<registry>/<repository>:<tag>", or "<repository>:<tag>"
 *   Patroni:      bazar.patroni.image   → the same, an empty registry meaning image.registry (empty
 *                                        here too): the default engine's; unused with
 *                                        postgresql.engine=pair, so one values file serves both engines
 * The kubelet normalises what it is given the way containerd named the imported image:
 * "bazar-front:T" is docker.io/library/bazar-front:T, "localhost/x/y:T" stays as it is.
 *
 * Pass them with --set-string (or as a values file): `--set` would turn a tag like 18 into a number,
 * which values.schema.json rejects.
 */
import { stringify } from 'yaml';
import type { ImageRecord } from './types.js';

export interface ImageRefParts {
  /** Registry host, '' for Docker Hub's familiar names. */
  registry: string;
  repository: string;
  tag: string;
}

const HUB_LIBRARY = 'docker.io/library/';
const HUB = 'docker.io/';

/** Splits a reference the way the chart composes one (familiar Docker Hub names lose docker.io). */
export function splitRef(ref: string): ImageRefParts {
  if (ref.includes('@')) throw new Error(`image ${ref}: digests are not supported, use a tag`);
  const colon = ref.lastIndexOf(':');
  if (colon < 0 || ref.slice(colon).includes('/')) throw new Error(`image ${ref} has no tag`);
  const name = ref.slice(0, colon);
  const tag = ref.slice(colon + 1);
  if (name.startsWith(HUB_LIBRARY)) return { registry: '', repository: name.slice(HUB_LIBRARY.length), tag };
  if (name.startsWith(HUB)) return { registry: '', repository: name.slice(HUB.length), tag };
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  // Docker's rule: the first component is a registry if it has a dot or a port, or is "localhost".
  if (first === 'localhost' || first.includes('.') || first.includes(':')) {
    return { registry: first, repository: name.slice(slash + 1), tag };
  }
  return { registry: '', repository: name, tag };
}

const SERVICES = new Set(['front', 'catalog', 'order']);
// Third-party images of the chart and the value path of each.
const THIRD_PARTY: Record<string, string> = {
  'postgres-standin': 'postgresql.image',
  'curl-standin': 'tests.image',
  'postgres-patroni': 'postgresql.patroni.image',
};
const PULL_POLICY = 'IfNotPresent';

function serviceValues(rec: ImageRecord): Record<string, string> {
  const parts = splitRef(rec.ref);
  if (parts.registry !== '') {
    throw new Error(`${rec.name}: ${rec.ref} has a registry; the chart's image.registry would apply to all`);
  }
  return { [`${rec.name}.image.repository`]: parts.repository, [`${rec.name}.image.tag`]: parts.tag };
}

function thirdPartyValues(prefix: string, rec: ImageRecord): Record<string, string> {
  const parts = splitRef(rec.ref);
  return {
    [`${prefix}.registry`]: parts.registry,
    [`${prefix}.repository`]: parts.repository,
    [`${prefix}.tag`]: parts.tag,
    [`${prefix}.pullPolicy`]: PULL_POLICY,
  };
}

/** Flat `key=value` pairs for `helm --set-string`, for the images among `records`. */
export function chartImageValues(records: readonly ImageRecord[]): Record<string, string> {
  const values: Record<string, string> = {};
  let anyService = false;
  for (const rec of records) {
    if (SERVICES.has(rec.name)) {
      Object.assign(values, serviceValues(rec));
      anyService = true;
    } else if (THIRD_PARTY[rec.name]) {
      Object.assign(values, thirdPartyValues(THIRD_PARTY[rec.name]!, rec));
    }
  }
  // A non-latest tag already means IfNotPresent; saying it keeps a changed chart default from pulling.
  if (anyService) values['image.pullPolicy'] = PULL_POLICY;
  return Object.fromEntries(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The same values as helm arguments. */
export function helmSetArgs(values: Record<string, string>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set-string', `${k}=${v}`]);
}

/** The same values as a nested values file (for `helm install -f`). */
export function chartValuesYaml(values: Record<string, string>): string {
  const root: Record<string, unknown> = {};
  for (const [dotted, value] of Object.entries(values)) {
    const parts = dotted.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]!] = value;
  }
  const header = '# Written by tools/images: the images built on this machine (helm install -f this file).\n';
  return header + stringify(root, { defaultStringType: 'QUOTE_SINGLE', defaultKeyType: 'PLAIN' });
}
