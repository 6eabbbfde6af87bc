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

function asset(...parts: string[]): string {
  return path.join(ASSETS_DIR, ...parts);
}

function standinLabels(of: string, description: string): Record<string, string> {
  return {
    'org.opencontainers.image.title': description,
    'dev.bazar.standin-for': of,
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
          labels: standinLabels(
            'docker.io/library/node:20-bookworm-slim',
            'node:20 stand-in (Debian trixie nodejs)',
          ),
        },
      );
    },
  };
}

// ---------------------------------------------------------------- our services (skaffold.yaml)

interface ServiceSources {
  artifacts: Artifact[];
  digest(a: Artifact): Promise<Record<string, KeyValue>>;
}

/** The artifacts of skaffold.yaml, and the digest of each one's Dockerfile and context. */
async function serviceSources(): Promise<ServiceSources> {
  const { artifacts } = parseSkaffoldBuild(await fs.readFile(path.join(REPO_ROOT, 'skaffold.yaml'), 'utf8'));
  // Walked again for every key: a key is checked once more after its build, so it must see the
  // files as they are then, not as they were (in a shared tree they change). A walk takes ms.
  const contextDigest = async (dir: string): Promise<string> => {
    const files = await contextFiles(dir);
    return sha256(canonicalJson(files.map((f) => [f.path, f.sha256, f.executable])));
  };
  return {
    artifacts,
    async digest(a) {
      const dir = path.resolve(REPO_ROOT, a.context);
      const ignore = path.join(dir, '.dockerignore');
      return {
        dockerfile: await fileSha256(path.join(dir, a.dockerfile)),
        dockerignore: existsSync(ignore) ? await fileSha256(ignore) : '',
        context: await contextDigest(dir),
      };
    },
  };
}

function serviceRecipe(sources: ServiceSources, a: Artifact): Recipe {
  const contextDir = path.resolve(REPO_ROOT, a.context);
  return {
    name: artifactName(a.image),
    deps: ['node-standin'],
    layerCache: true,
    // skaffold's inputDigest tag policy: the tag is a digest of the inputs, never "latest", so a pod's
    // IfNotPresent pull policy finds the imported image and never pulls. No registry: containerd
    // names it docker.io/library/<image>, which is what the kubelet asks for given "<image>:<tag>".
    ref: (key) => `docker.io/library/${a.image}:${key}`,
    inputs: async () => ({
      recipe: 1,
      image: a.image,
      buildArgs: a.buildArgs,
      target: a.target ?? null,
      ...(await sources.digest(a)),
    }),
    async build(ctx) {
      const node = ctx.deps.get('node-standin')!;
      const args = [
        'bud',
        '--layers',
        '--pull-never',
        '--force-rm',
        '--format',
        'docker',
        '--network',
        'host',
      ];
      args.push('--file', path.join(contextDir, a.dockerfile));
      for (const [k, v] of Object.entries(a.buildArgs)) args.push('--build-arg', `${k}=${v}`);
      // The Dockerfile's documented override of its base (default node:20-bookworm-slim).
      args.push('--build-arg', `NODE_IMAGE=${node.ref}`);
      if (a.target) args.push('--target', a.target);
      args.push('--tag', ctx.ref, contextDir);
      await ctx.buildah.run(args);
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
          labels: standinLabels(
            'docker.io/library/postgres:18',
            'postgres:18 stand-in (Debian unstable postgresql-18)',
          ),
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
  const sources = await serviceSources();
  return [
    pauseRecipe(),
    nodeRecipe(cache),
    ...sources.artifacts.map((a) => serviceRecipe(sources, a)),
    postgresRecipe(),
    curlRecipe(),
    busyboxRecipe(),
    corednsRecipe(),
    localPathRecipe(),
  ];
}
