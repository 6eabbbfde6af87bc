/**
 * buildah (Debian's 1.28) on a storage of our own inside the cache, so that our base images and
 * layer cache neither mix with nor disturb anything else on the machine, and "clean" can remove all
 * of it. Every working container this module creates is removed again, on failure too.
 */
import * as fs from 'node:fs/promises';
import { run, output, type RunOptions } from './exec.js';
import type { CacheLayout } from './paths.js';

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  user?: string;
  workingDir?: string;
  ports?: string[];
  volumes?: string[];
  labels?: Record<string, string>;
  stopSignal?: string;
}

export class Buildah {
  constructor(
    private readonly cache: CacheLayout,
    private readonly logFile?: string,
  ) {}

  withLog(logFile: string): Buildah {
    return new Buildah(this.cache, logFile);
  }

  /** Global flags: our storage, the overlay driver (native overlay works on ext4 here). */
  private globalArgs(): string[] {
    return ['--root', this.cache.storage, '--runroot', this.cache.runRoot, '--storage-driver', 'overlay'];
  }

  async run(args: string[], opts: RunOptions = {}): Promise<string> {
    await fs.mkdir(this.cache.storage, { recursive: true });
    const { stdout } = await run('buildah', [...this.globalArgs(), ...args], {
      logFile: this.logFile,
      capture: true,
      ...opts,
    });
    return stdout.trim();
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await output('buildah', [
        ...this.globalArgs(),
        'inspect',
        '--type',
        'image',
        '--format',
        '{{.FromImageID}}',
        ref,
      ]);
      return true;
    } catch {
      return false;
    }
  }

  /** Runs `fn` with a fresh working container from `base` ("scratch" for none), removed afterwards. */
  async withContainer<T>(base: string, name: string, fn: (ctr: string) => Promise<T>): Promise<T> {
    const ctr = await this.run(['from', '--pull-never', '--name', name, base]);
    try {
      return await fn(ctr);
    } finally {
      await this.run(['rm', ctr]).catch(() => undefined);
    }
  }

  async add(
    ctr: string,
    src: string,
    dest: string,
    opts: { chown?: string; chmod?: string } = {},
  ): Promise<void> {
    const flags = [
      ...(opts.chown ? ['--chown', opts.chown] : []),
      ...(opts.chmod ? ['--chmod', opts.chmod] : []),
    ];
    // `add` of a local tar extracts it keeping owners, modes and xattrs (file capabilities); `copy`
    // would make everything root-owned.
    await this.run(['add', ...flags, ctr, src, dest]);
  }

  async copy(
    ctr: string,
    src: string,
    dest: string,
    opts: { chown?: string; chmod?: string } = {},
  ): Promise<void> {
    const flags = [
      ...(opts.chown ? ['--chown', opts.chown] : []),
      ...(opts.chmod ? ['--chmod', opts.chmod] : []),
    ];
    await this.run(['copy', ...flags, ctr, src, dest]);
  }

  async config(ctr: string, cfg: ImageConfig): Promise<void> {
    const args: string[] = [];
    if (cfg.entrypoint) args.push('--entrypoint', JSON.stringify(cfg.entrypoint));
    if (cfg.cmd) args.push('--cmd', JSON.stringify(cfg.cmd));
    for (const [k, v] of Object.entries(cfg.env ?? {})) args.push('--env', `${k}=${v}`);
    if (cfg.user) args.push('--user', cfg.user);
    if (cfg.workingDir) args.push('--workingdir', cfg.workingDir);
    for (const p of cfg.ports ?? []) args.push('--port', p);
    for (const v of cfg.volumes ?? []) args.push('--volume', v);
    for (const [k, v] of Object.entries(cfg.labels ?? {})) args.push('--label', `${k}=${v}`);
    if (cfg.stopSignal) args.push('--stop-signal', cfg.stopSignal);
    await this.run(['config', ...args, ctr]);
  }

  /** Commits in Docker's format (what `docker build` and skaffold's local builder produce). */
  async commit(ctr: string, ref: string): Promise<void> {
    await this.run(['commit', '--format', 'docker', '--quiet', ctr, ref]);
  }

  /**
   * Writes `ref` as a docker-archive that `ctr images import` accepts. The archive names the image
   * by `ref` only: the image must carry no other name in our storage, or the archive lists that too.
   */
  async pushArchive(ref: string, file: string): Promise<void> {
    await fs.rm(file, { force: true });
    await this.run(['push', '--quiet', ref, `docker-archive:${file}:${ref}`]);
  }

  /** Loads an archive back into our storage (a base image whose storage was cleaned). */
  async pullArchive(file: string): Promise<void> {
    await this.run(['pull', '--quiet', `docker-archive:${file}`]);
  }

  async removeImage(ref: string): Promise<void> {
    await this.run(['rmi', ref]).catch(() => undefined);
  }

  /** Names of the images in our storage. */
  async imageNames(): Promise<string[]> {
    const out = await this.run(['images', '--noheading', '--format', '{{.Name}}:{{.Tag}}']);
    return out.split('\n').filter((l) => l && !l.startsWith('<none>'));
  }

  /** Images without a name: `bud --layers` keeps one per step as its cache. */
  async unnamedImages(): Promise<Array<{ id: string; created: number }>> {
    const list = JSON.parse((await this.run(['images', '--all', '--json'])) || '[]') as Array<{
      id: string;
      names: string[] | null;
      created: number;
    }>;
    return list.filter((i) => !i.names || i.names.length === 0).map(({ id, created }) => ({ id, created }));
  }

  /** Working containers left by a build that was killed (nothing else creates them in our storage). */
  async removeAllContainers(): Promise<void> {
    await this.run(['rm', '--all']).catch(() => undefined);
  }
}
