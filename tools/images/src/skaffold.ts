/**
 * The images skaffold.yaml declares, read the way skaffold reads them, so that the image tool builds
 * exactly those with buildah (no Docker here). skaffold itself is built by scripts/skaffold.sh (a
 * wrapper module repeating its replace directives) and runs its `bazar-cluster` profile, whose custom
 * builder calls this tool; this reader is what lets `npm run images` and the tests do without it. Only
 * what skaffold would do for these artifacts is supported; any builder or field we cannot reproduce is
 * an error, not something silently dropped.
 */
import { parse } from 'yaml';

export interface Artifact {
  /** The image name skaffold builds, e.g. "bazar-front". */
  image: string;
  /** Build context directory, relative to skaffold.yaml (skaffold's default: "."). */
  context: string;
  /** Dockerfile, relative to the context (default "Dockerfile"). */
  dockerfile: string;
  buildArgs: Record<string, string>;
  /** A multi-stage target, if the artifact names one. */
  target?: string;
}

export interface SkaffoldBuild {
  artifacts: Artifact[];
  /** skaffold's tag policy (the name of its one key, e.g. "inputDigest"; default "gitCommit"). */
  tagPolicy: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// The docker builder's fields that change what gets built; anything else (cacheFrom, network,
// noCache, pullParent, ...) changes how, which buildah decides for itself here.
const DOCKER_FIELDS = new Set(['dockerfile', 'buildArgs', 'target', 'cacheFrom', 'noCache', 'pullParent']);
const ARTIFACT_FIELDS = new Set(['image', 'context', 'docker', 'sync', 'requires', 'hooks', 'platforms']);

function buildArgs(image: string, raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!isObj(raw)) throw new Error(`skaffold.yaml: ${image}: buildArgs must be a map`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === null || v === undefined) {
      // skaffold passes an arg without a value from the environment; we never want host state here.
      throw new Error(`skaffold.yaml: ${image}: build arg ${k} has no value`);
    }
    const s = String(v);
    if (s.includes('{{')) throw new Error(`skaffold.yaml: ${image}: build arg ${k} is a template: ${s}`);
    out[k] = s;
  }
  return out;
}

function artifact(raw: unknown): Artifact {
  if (!isObj(raw) || typeof raw.image !== 'string' || raw.image === '') {
    throw new Error('skaffold.yaml: every build artifact needs an image name');
  }
  const image = raw.image;
  for (const key of Object.keys(raw)) {
    if (!ARTIFACT_FIELDS.has(key)) {
      throw new Error(`skaffold.yaml: ${image}: builder or field "${key}" is not supported (docker only)`);
    }
  }
  const docker = raw.docker ?? {};
  if (!isObj(docker)) throw new Error(`skaffold.yaml: ${image}: docker must be a map`);
  for (const key of Object.keys(docker)) {
    if (!DOCKER_FIELDS.has(key)) throw new Error(`skaffold.yaml: ${image}: docker.${key} is not supported`);
  }
  const out: Artifact = {
    image,
    context: typeof raw.context === 'string' && raw.context !== '' ? raw.context : '.',
    dockerfile:
      typeof docker.dockerfile === 'string' && docker.dockerfile !== '' ? docker.dockerfile : 'Dockerfile',
    buildArgs: buildArgs(image, docker.buildArgs),
  };
  if (typeof docker.target === 'string' && docker.target !== '') out.target = docker.target;
  return out;
}

/** The build section of a skaffold.yaml (the base config; profiles only change push and deploy here). */
export function parseSkaffoldBuild(text: string): SkaffoldBuild {
  const doc: unknown = parse(text);
  if (!isObj(doc) || !isObj(doc.build) || !Array.isArray(doc.build.artifacts)) {
    throw new Error('skaffold.yaml: no build.artifacts');
  }
  const artifacts = doc.build.artifacts.map(artifact);
  const seen = new Set<string>();
  for (const a of artifacts) {
    if (seen.has(a.image)) throw new Error(`skaffold.yaml: image ${a.image} is declared twice`);
    seen.add(a.image);
  }
  const policy = doc.build.tagPolicy;
  const tagPolicy = isObj(policy) && Object.keys(policy).length > 0 ? Object.keys(policy)[0]! : 'gitCommit';
  return { artifacts, tagPolicy };
}

/** The short name of an artifact's image record: "bazar-front" → "front". */
export function artifactName(image: string): string {
  const base = image.split('/').pop()!;
  return base.startsWith('bazar-') ? base.slice('bazar-'.length) : base;
}
