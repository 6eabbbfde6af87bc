/**
 * The images, one recipe each: what it is built from (its key inputs), the name containerd will
 * list it under, and how buildah makes it. Stand-ins for images that cannot be pulled here say
 * "standin" in their name and keep the documented contract of the image they replace; the programs
 * built here from source (CoreDNS, local-path-provisioner) are named "bazar-local".
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Buildah, ImageConfig } from './buildah.js';
import { contextFiles } from './context.js';
import { normaliseImageRef, parseDockerfile, type DockerfileInfo } from './dockerfile.js';
import { output, run } from './exec.js';
import { canonicalJson, fileSha256, sha256, type KeyValue } from './key.js';
import { ASSETS_DIR, REPO_ROOT, type CacheLayout } from './paths.js';
import { ensureRootfs, rootfsKey, type RootfsSpec } from './rootfs.js';
import { artifactName, parseSkaffoldBuild, type Artifact } from './skaffold.js';
import type { ImageRecord } from './types.js';

export interface BuildContext {
  cache: CacheLayout;
  buildah: Buildah;
  log: (line: string) => void;
  logFile: string;
  key: string;
  ref: string;
  /** Records of the images this one is built on. */
  deps: ReadonlyMap<string, ImageRecord>;
  /** Asked to rebuild: make its root filesystem again too (the suite's packages moved on). */
  force: boolean;
}

export interface Recipe {
  name: string;
  /** Images that must exist first (their keys become part of this one's key). */
  deps: string[];
  inputs(): Promise<Record<string, KeyValue>>;
  /** Called after inputs() (a tool's version, read there, may be part of the name). */
  ref(key: string): string;
  build(ctx: BuildContext): Promise<void>;
  /** Built with `bud --layers`: its log names the layer-cache images the build used. */
  layerCache?: boolean;
  /** Made from a binary of scripts/k8s-tools.sh, so it cannot be built before that toolchain is. */
  needsToolchain?: boolean;
  /**
   * A stand-in: the official image it replaces (normalised, docker.io/library/...). A Dockerfile whose
   * base ARG defaults to that image is built on this one.
   */
  standinFor?: string;
}

const STANDIN = 'localhost/bazar-standin';
const LOCAL = 'localhost/bazar-local';
const HOST_CA_BUNDLE = process.env.BAZAR_CA_BUNDLE || '/etc/ssl/certs/ca-certificates.crt';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// npm as Node 20.19 bundles it (what node:20-bookworm-slim has), pinned by its registry integrity.
const NPM_VERSION = '10.8.2';
const NPM_INTEGRITY =
  'sha512-x/AIjFIKRllrhcb48dqUNAAZl0ig9+qMuN91RpZo3Cb2+zuibfh+KISl6+kVVyktDz230JKc208UkQwwMqyB+w==';
const PG_MAJOR = '18';
const NODE_OFFICIAL = 'docker.io/library/node:20-bookworm-slim';
const POSTGRES_OFFICIAL = `docker.io/library/postgres:${PG_MAJOR}`;

function asset(...parts: string[]): string {
  return path.join(ASSETS_DIR, ...parts);
}

const STANDIN_FOR_LABEL = 'dev.bazar.standin-for';

function standinLabels(of: string, description: string): Record<string, string> {
  return {
    'org.opencontainers.image.title': description,
    [STANDIN_FOR_LABEL]: of,
    'org.opencontainers.image.source': 'tools/images (Bazar)',
  };
}

/** A fresh directory under work/ for one build's files, removed by the caller's `finally`. */
async function workDir(cache: CacheLayout, name: string): Promise<string> {
  const dir = path.join(cache.work, name);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/** An image made from a root filesystem tar (one layer) plus files copied on top, then configured. */
async function imageFromTar(
  ctx: BuildContext,
  base: string,
  tar: string | undefined,
  extra: Array<{ src: string; dest: string; chmod?: string }>,
  config: ImageConfig,
): Promise<void> {
  await ctx.buildah.withContainer(base, `bazar-images-${path.basename(ctx.logFile, '.log')}`, async (ctr) => {
    if (tar) await ctx.buildah.add(ctr, tar, '/');
    for (const f of extra)
      await ctx.buildah.copy(ctr, f.src, f.dest, { chmod: f.chmod ?? '0755', chown: '0:0' });
    await ctx.buildah.config(ctr, config);
    await ctx.buildah.commit(ctr, ctx.ref);
  });
}

// ---------------------------------------------------------------- pause

function pauseRecipe(): Recipe {
  const source = asset('pause', 'pause.c');
  const cflags = ['-static', '-O2', '-s', '-Wall', '-Wextra', '-Werror'];
  return {
    name: 'pause',
    deps: [],
    ref: () => `${STANDIN}/pause:3.10`,
    inputs: async () => ({
      recipe: 1,
      source: await fileSha256(source),
      gcc: (await output('gcc', ['--version'])).split('\n')[0]!,
      cflags,
    }),
    async build(ctx) {
      const dir = await workDir(ctx.cache, 'pause');
      try {
        const bin = path.join(dir, 'pause');
        await run('gcc', [...cflags, '-o', bin, source], { logFile: ctx.logFile });
        // The real image: the binary alone, FROM scratch, as 65535:65535.
        await imageFromTar(ctx, 'scratch', undefined, [{ src: bin, dest: '/pause' }], {
          entrypoint: ['/pause'],
          user: '65535:65535',
          labels: standinLabels('registry.k8s.io/pause:3.10', 'pause stand-in (gcc -static)'),
        });
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  };
}

// ---------------------------------------------------------------- node:20-bookworm-slim

async function npmTarball(cache: CacheLayout): Promise<string> {
  const file = path.join(cache.downloads, `npm-${NPM_VERSION}.tgz`);
  if (!existsSync(file)) {
    await fs.mkdir(cache.downloads, { recursive: true });
    // `npm pack` fetches through npm's own client and cache, and checks the registry's integrity.
    await run('npm', ['pack', `npm@${NPM_VERSION}`, '--pack-destination', cache.downloads, '--silent'], {
      cwd: cache.downloads,
    });
  }
  const digest = `sha512-${createHash('sha512')
    .update(await fs.readFile(file))
    .digest('base64')}`;
  if (digest !== NPM_INTEGRITY) {
    await fs.rm(file, { force: true });
    throw new Error(`npm-${NPM_VERSION}.tgz: integrity ${digest}, expected ${NPM_INTEGRITY}`);
  }
  return file;
}

function nodeRootfs(npm: string): RootfsSpec {
  return {
    name: 'node-standin',
    suite: 'trixie',
    packages: ['nodejs'],
    scripts: [asset('node-standin', 'setup.sh')],
    files: { 'npm.tgz': npm, 'ca-certificates.crt': HOST_CA_BUNDLE },
    outputs: { root: '.' },
  };
}

function nodeRecipe(cache: CacheLayout): Recipe {
  const entrypoint = asset('node-standin', 'docker-entrypoint.sh');
  return {
    name: 'node-standin',
    deps: [],
    standinFor: NODE_OFFICIAL,
    ref: () => `${STANDIN}/node:20-bookworm-slim`,
    inputs: async () => ({
      recipe: 1,
      rootfs: await rootfsKey(nodeRootfs(await npmTarball(cache))),
      entrypoint: await fileSha256(entrypoint),
    }),
    async build(ctx) {
      const spec = nodeRootfs(await npmTarball(ctx.cache));
      const { tars } = await ensureRootfs(spec, ctx);
      await imageFromTar(
        ctx,
        'scratch',
        tars.root,
        [{ src: entrypoint, dest: '/usr/local/bin/docker-entrypoint.sh' }],
        {
          env: {
            PATH: DEFAULT_PATH,
            // Node's own CA list does not have this machine's authorities; npm ci in a build needs them.
            NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt',
          },
          entrypoint: ['docker-entrypoint.sh'],
          cmd: ['node'],
          labels: standinLabels(NODE_OFFICIAL, 'node:20 stand-in (Debian trixie nodejs)'),
        },
      );
    },
  };
}

// ---------------------------------------------------------------- our images (skaffold.yaml)

/**
 * Build-only settings a Dockerfile may declare as ARGs (pip's and apt's own variables), and the file
 * each one is given here: written for the build, bind-mounted read-only at BUILD_FILES_DIR and named
 * by the ARG. /dev is a tmpfs of the build container, so the mount leaves nothing in a layer; ARG
 * values are not in the image's environment. Only Dockerfiles that declare an ARG get it (the
 * services' Dockerfile declares neither: their base, the node stand-in, carries the CA bundle).
 */
export const BUILD_FILES_DIR = '/dev/bazar-build';
const BUILD_SETTINGS: Record<string, { file: string; content: () => Promise<string | Buffer> }> = {
  // pip trusts its own CA list, which lacks the authority of a proxy that re-signs TLS: the host's.
  PIP_CERT: { file: 'ca-certificates.crt', content: () => fs.readFile(HOST_CA_BUNDLE) },
  // The stand-ins' Debian unstable mirror may serve a Release file past its Valid-Until; their own
  // apt runs allow it too (postgres-standin/setup.sh).
  APT_CONFIG: { file: 'apt.conf', content: async () => 'Acquire::Check-Valid-Until "false";\n' },
};

interface ArtifactSources {
  artifacts: Artifact[];
  dockerfile(a: Artifact): Promise<DockerfileInfo>;
  digest(a: Artifact): Promise<Record<string, KeyValue>>;
}

/** The artifacts of skaffold.yaml, and the digest of each one's Dockerfile and context. */
async function artifactSources(): Promise<ArtifactSources> {
  const { artifacts } = parseSkaffoldBuild(await fs.readFile(path.join(REPO_ROOT, 'skaffold.yaml'), 'utf8'));
  return { artifacts, ...artifactFiles() };
}

function dockerfilePath(a: Artifact): string {
  return path.join(path.resolve(REPO_ROOT, a.context), a.dockerfile);
}

/** How an artifact's files are read (its context may be any directory: a test's, too). */
export function artifactFiles(): Omit<ArtifactSources, 'artifacts'> {
  // Walked again for every key: a key is checked once more after its build, so it must see the
  // files as they are then, not as they were (in a shared tree they change). A walk takes ms.
  const contextDigest = async (dir: string): Promise<string> => {
    const files = await contextFiles(dir);
    return sha256(canonicalJson(files.map((f) => [f.path, f.sha256, f.executable])));
  };
  return {
    async dockerfile(a) {
      return parseDockerfile(await fs.readFile(dockerfilePath(a), 'utf8'));
    },
    async digest(a) {
      const dir = path.resolve(REPO_ROOT, a.context);
      const ignore = path.join(dir, '.dockerignore');
      return {
        dockerfile: await fileSha256(dockerfilePath(a)),
        dockerignore: existsSync(ignore) ? await fileSha256(ignore) : '',
        context: await contextDigest(dir),
      };
    },
  };
}

/** Each base ARG of a Dockerfile and the stand-in recipe that builds in its place here. */
export function standinBases(
  a: Artifact,
  info: DockerfileInfo,
  recipes: readonly Recipe[],
): Array<{ arg: string; recipe: string }> {
  const where = `skaffold.yaml: ${a.image}: ${path.join(a.context, a.dockerfile)}`;
  if (info.pulledImages.length > 0) {
    throw new Error(
      `${where} names ${info.pulledImages.join(', ')} in FROM, which cannot be pulled here: ` +
        'make it the default of a global ARG (ARG BASE=image, FROM ${BASE}) that has a stand-in',
    );
  }
  return info.baseArgs.map((b) => {
    const official = b.image ? normaliseImageRef(b.image) : '';
    const standin = recipes.find((r) => r.standinFor !== undefined && r.standinFor === official);
    if (!standin) {
      const known = recipes.filter((r) => r.standinFor).map((r) => `${r.standinFor} (${r.name})`);
      throw new Error(
        `${where} is built on ${b.image || `ARG ${b.arg} without a default`}, which has no stand-in here ` +
          `(stand-ins: ${known.join(', ')})`,
      );
    }
    return { arg: b.arg, recipe: standin.name };
  });
}

/**
 * One artifact of skaffold.yaml: its Dockerfile built with `buildah bud`, as skaffold's docker
 * builder would, on the stand-ins of its official bases (--build-arg <base ARG>=<stand-in>).
 * `sharedDockerfile`: other artifacts are built from the same Dockerfile (the three services share
 * its deps and build stages), so the build keeps buildah's layer cache (`--layers`); a Dockerfile of
 * its own is built whole whenever its key changes, and leaves no cache images behind.
 */
export function artifactRecipe(
  sources: Omit<ArtifactSources, 'artifacts'>,
  a: Artifact,
  info: DockerfileInfo,
  recipes: readonly Recipe[],
  sharedDockerfile: boolean,
): Recipe {
  const contextDir = path.resolve(REPO_ROOT, a.context);
  const bases = standinBases(a, info, recipes);
  const name = artifactName(a.image);
  return {
    name,
    deps: bases.map((b) => b.recipe),
    layerCache: sharedDockerfile,
    // skaffold's inputDigest tag policy: the tag is a digest of the inputs, never "latest", so a pod's
    // IfNotPresent pull policy finds the imported image and never pulls. No registry: containerd
    // names it docker.io/library/<image>, which is what the kubelet asks for given "<image>:<tag>".
    ref: (key) => `docker.io/library/${a.image}:${key}`,
    // The Dockerfile and every file of the context (for the Postgres + Patroni image: its entrypoint
    // and the pinned requirements), the build arguments; the bases' keys come in as deps.
    inputs: async () => ({
      recipe: 1,
      image: a.image,
      buildArgs: a.buildArgs,
      target: a.target ?? null,
      ...(await sources.digest(a)),
    }),
    async build(ctx) {
      // (--force-rm, which drops the build's containers even after a failure, comes with --layers.)
      const layers = sharedDockerfile ? { cache: ['--layers'], rm: ['--force-rm'] } : { cache: [], rm: [] };
      const args = ['bud', ...layers.cache, '--pull-never', ...layers.rm];
      args.push('--format', 'docker', '--network', 'host');
      args.push('--file', path.join(contextDir, a.dockerfile));
      for (const [k, v] of Object.entries(a.buildArgs)) args.push('--build-arg', `${k}=${v}`);
      // The Dockerfile's documented override of its base (e.g. NODE_IMAGE, default node:20-bookworm-slim).
      for (const b of bases) args.push('--build-arg', `${b.arg}=${ctx.deps.get(b.recipe)!.ref}`);
      if (a.target) args.push('--target', a.target);
      // The image inherits its stand-in base's labels: it is ours, built here on that stand-in, and
      // stands in for nothing (an empty value; a build cannot remove a label).
      if (bases.length > 0) {
        const on = bases.map((b) => ctx.deps.get(b.recipe)!.ref).join(',');
        args.push('--label', `${STANDIN_FOR_LABEL}=`, '--label', `dev.bazar.built-on=${on}`);
      }
      const settings = Object.keys(BUILD_SETTINGS).filter((arg) => info.args.has(arg));
      const files = settings.length > 0 ? await workDir(ctx.cache, `${name}-build-files`) : undefined;
      try {
        if (files) {
          for (const arg of settings) {
            const { file, content } = BUILD_SETTINGS[arg]!;
            await fs.writeFile(path.join(files, file), await content(), { mode: 0o644 });
            args.push('--build-arg', `${arg}=${BUILD_FILES_DIR}/${file}`);
          }
          args.push('--volume', `${files}:${BUILD_FILES_DIR}:ro`);
        }
        args.push('--tag', ctx.ref, contextDir);
        await ctx.buildah.run(args);
      } finally {
        if (files) await fs.rm(files, { recursive: true, force: true });
      }
    },
  };
}

// ---------------------------------------------------------------- postgres:18

function postgresRootfs(): RootfsSpec {
  return {
    name: 'postgres-standin',
    suite: 'sid',
    packages: [],
    scripts: [asset('postgres-standin', 'setup.sh')],
    files: {},
    outputs: { root: '.' },
  };
}

function postgresRecipe(): Recipe {
  const entrypoint = asset('postgres-standin', 'docker-entrypoint.sh');
  return {
    name: 'postgres-standin',
    deps: [],
    standinFor: POSTGRES_OFFICIAL,
    ref: () => `${STANDIN}/postgres:${PG_MAJOR}`,
    inputs: async () => ({
      recipe: 1,
      rootfs: await rootfsKey(postgresRootfs()),
      entrypoint: await fileSha256(entrypoint),
    }),
    async build(ctx) {
      const { tars } = await ensureRootfs(postgresRootfs(), ctx);
      await imageFromTar(
        ctx,
        'scratch',
        tars.root,
        [{ src: entrypoint, dest: '/usr/local/bin/docker-entrypoint.sh' }],
        {
          env: {
            PATH: `${DEFAULT_PATH}:/usr/lib/postgresql/${PG_MAJOR}/bin`,
            PG_MAJOR,
            PGDATA: `/var/lib/postgresql/${PG_MAJOR}/docker`,
            LANG: 'en_US.utf8',
          },
          entrypoint: ['docker-entrypoint.sh'],
          cmd: ['postgres'],
          // SIGINT is PostgreSQL's fast shutdown, as in the official image.
          stopSignal: 'SIGINT',
          ports: ['5432/tcp'],
          volumes: ['/var/lib/postgresql'],
          labels: standinLabels(POSTGRES_OFFICIAL, 'postgres:18 stand-in (Debian unstable postgresql-18)'),
        },
      );
    },
  };
}

// ---------------------------------------------------------------- curlimages/curl and busybox

function busyboxCurlRootfs(): RootfsSpec {
  return {
    name: 'busybox-curl',
    suite: 'trixie',
    packages: ['curl', 'busybox-static'],
    scripts: [asset('busybox-curl-standin', 'setup.sh')],
    files: { 'ca-certificates.crt': HOST_CA_BUNDLE },
    outputs: { curl: 'bazar-stage/curl', busybox: 'bazar-stage/busybox' },
  };
}

function curlRecipe(): Recipe {
  const entrypoint = asset('busybox-curl-standin', 'curl-entrypoint.sh');
  return {
    name: 'curl-standin',
    deps: [],
    ref: () => `${STANDIN}/curl:8.11.1`,
    inputs: async () => ({
      recipe: 1,
      rootfs: await rootfsKey(busyboxCurlRootfs()),
      entrypoint: await fileSha256(entrypoint),
    }),
    async build(ctx) {
      const { tars } = await ensureRootfs(busyboxCurlRootfs(), ctx);
      await imageFromTar(ctx, 'scratch', tars.curl, [{ src: entrypoint, dest: '/entrypoint.sh' }], {
        env: { PATH: DEFAULT_PATH },
        entrypoint: ['/entrypoint.sh'],
        cmd: ['curl'],
        user: 'curl_user',
        labels: standinLabels(
          'docker.io/curlimages/curl:8.11.1',
          'curl stand-in (busybox + Debian trixie curl)',
        ),
      });
    },
  };
}

function busyboxRecipe(): Recipe {
  return {
    name: 'busybox-standin',
    deps: [],
    ref: () => `${STANDIN}/busybox:1.37`,
    inputs: async () => ({ recipe: 1, rootfs: await rootfsKey(busyboxCurlRootfs()) }),
    async build(ctx) {
      const { tars } = await ensureRootfs(busyboxCurlRootfs(), ctx);
      await imageFromTar(ctx, 'scratch', tars.busybox, [], {
        env: { PATH: DEFAULT_PATH },
        cmd: ['sh'],
        labels: standinLabels('docker.io/library/busybox', 'busybox stand-in (Debian trixie busybox-static)'),
      });
    },
  };
}

// ---------------------------------------------------------------- CoreDNS, local-path-provisioner

interface ToolBinary {
  file: string;
  /** The version scripts/k8s-tools.sh built, from its stamp ("coredns v1.15.0" → "v1.15.0"). */
  version: string;
}

async function toolsBinDir(): Promise<string> {
  if (process.env.BAZAR_TOOLS_BIN) return process.env.BAZAR_TOOLS_BIN;
  return output('bash', [path.join(REPO_ROOT, 'scripts', 'k8s-tools.sh'), '--print-bin-dir']);
}

async function toolBinary(tool: string): Promise<ToolBinary> {
  const dir = await toolsBinDir();
  const file = path.join(dir, tool);
  const stamp = path.join(dir, '.stamps', tool);
  if (!existsSync(file) || !existsSync(stamp)) {
    throw new Error(`${tool}: no binary in ${dir}; scripts/k8s-tools.sh builds it (see --status)`);
  }
  const version = (await fs.readFile(stamp, 'utf8')).trim().split(/\s+/)[1] ?? '';
  if (!/^v\d/.test(version)) throw new Error(`${tool}: cannot read a version from ${stamp}`);
  return { file, version };
}

/** /etc/passwd and /etc/group of a FROM-scratch image (root, the image's user, nobody), and /tmp. */
async function minimalEtc(dir: string, user: { name: string; id: number }): Promise<void> {
  await fs.mkdir(path.join(dir, 'etc'), { recursive: true });
  await fs.mkdir(path.join(dir, 'tmp'), { mode: 0o1777 });
  await fs.chmod(path.join(dir, 'tmp'), 0o1777);
  const { name, id } = user;
  await fs.writeFile(
    path.join(dir, 'etc', 'passwd'),
    `root:x:0:0:root:/root:/sbin/nologin\n${name}:x:${id}:${id}:${name}:/home/${name}:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`,
  );
  await fs.writeFile(path.join(dir, 'etc', 'group'), `root:x:0:\n${name}:x:${id}:\nnogroup:x:65534:\n`);
}

function corednsRecipe(): Recipe {
  let binary: ToolBinary | undefined;
  const bin = async (): Promise<ToolBinary> => (binary ??= await toolBinary('coredns'));
  return {
    name: 'coredns',
    deps: [],
    needsToolchain: true,
    ref: () => `${LOCAL}/coredns:${binary?.version ?? 'unknown'}`,
    inputs: async () => {
      const b = await bin();
      return {
        recipe: 1,
        binary: await fileSha256(b.file),
        version: b.version,
        ca: await fileSha256(HOST_CA_BUNDLE),
      };
    },
    async build(ctx) {
      const b = await bin();
      const dir = await workDir(ctx.cache, 'coredns');
      try {
        // The official image: FROM distroless static :nonroot, /coredns with cap_net_bind_service
        // (so uid 65532 can bind :53), the CA certificates, ENTRYPOINT /coredns.
        const root = path.join(dir, 'root');
        await minimalEtc(root, { name: 'nonroot', id: 65532 });
        await fs.mkdir(path.join(root, 'etc', 'ssl', 'certs'), { recursive: true });
        await fs.copyFile(HOST_CA_BUNDLE, path.join(root, 'etc', 'ssl', 'certs', 'ca-certificates.crt'));
        await fs.copyFile(b.file, path.join(root, 'coredns'));
        await fs.chmod(path.join(root, 'coredns'), 0o755);
        await run('setcap', ['cap_net_bind_service=+ep', path.join(root, 'coredns')], {
          logFile: ctx.logFile,
        });
        const tar = path.join(dir, 'root.tar');
        await run(
          'tar',
          ['--create', '--file', tar, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', root, '.'],
          {
            logFile: ctx.logFile,
          },
        );
        await imageFromTar(ctx, 'scratch', tar, [], {
          entrypoint: ['/coredns'],
          user: '65532:65532',
          workingDir: '/',
          ports: ['53/tcp', '53/udp'],
          labels: { 'org.opencontainers.image.title': `CoreDNS ${b.version}, built from source here` },
        });
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  };
}

function localPathRecipe(): Recipe {
  let binary: ToolBinary | undefined;
  const bin = async (): Promise<ToolBinary> => (binary ??= await toolBinary('local-path-provisioner'));
  return {
    name: 'local-path-provisioner',
    deps: ['busybox-standin'],
    needsToolchain: true,
    ref: () => `${LOCAL}/local-path-provisioner:${binary?.version ?? 'unknown'}`,
    inputs: async () => {
      const b = await bin();
      return { recipe: 1, binary: await fileSha256(b.file), version: b.version };
    },
    async build(ctx) {
      const b = await bin();
      const base = ctx.deps.get('busybox-standin')!.ref;
      // The official image is alpine (a busybox userland) + /usr/bin/local-path-provisioner.
      await imageFromTar(ctx, base, undefined, [{ src: b.file, dest: '/usr/bin/local-path-provisioner' }], {
        cmd: ['local-path-provisioner'],
        labels: {
          'org.opencontainers.image.title': `local-path-provisioner ${b.version}, built from source here`,
        },
      });
    },
  };
}

/** Every recipe, in build order (a recipe's deps come before it). */
export async function allRecipes(cache: CacheLayout): Promise<Recipe[]> {
  const sources = await artifactSources();
  // The stand-ins our Dockerfiles are built on come before the artifacts.
  const bases = [pauseRecipe(), nodeRecipe(cache), postgresRecipe()];
  const artifacts: Recipe[] = [];
  for (const a of sources.artifacts) {
    const shared = sources.artifacts.filter((o) => dockerfilePath(o) === dockerfilePath(a)).length > 1;
    artifacts.push(artifactRecipe(sources, a, await sources.dockerfile(a), bases, shared));
  }
  return [...bases, ...artifacts, curlRecipe(), busyboxRecipe(), corednsRecipe(), localPathRecipe()];
}
