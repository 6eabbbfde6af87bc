/**
 * The Debian packages the image builds need on the host. A fresh CI machine gets the missing ones
 * with apt-get; nothing already installed is touched.
 */
import { run } from './exec.js';

export const HOST_PACKAGES = [
  'buildah', // images: from/copy/config/commit/push, and `bud` for our Dockerfile
  'debootstrap', // Debian root filesystems for the stand-ins
  'debian-archive-keyring', // debootstrap checks trixie's and unstable's Release signatures with it
  'gcc', // the pause stand-in
  'libc6-dev', // ... linked statically (libc.a)
  'libcap2-bin', // setcap: CoreDNS binds :53 as a non-root user through a file capability
  'tar',
  'util-linux', // unshare, setpriv
] as const;

export async function missingPackages(packages: readonly string[]): Promise<string[]> {
  // dpkg-query exits 1 when some package is unknown; what it printed about the others is still right.
  const { stdout: status } = await run(
    'dpkg-query',
    ['-W', '-f', '${Package} ${db:Status-Abbrev}\n', ...packages],
    {
      capture: true,
      allowExit: [1],
    },
  );
  const installed = new Set(
    status
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, abbrev]) => abbrev?.startsWith('ii'))
      .map(([name]) => name!.replace(/:.*$/, '')),
  );
  return packages.filter((p) => !installed.has(p));
}

/** apt-get install what is missing (root only); an apt-get update first if the lists are stale. */
export async function ensurePackages(log: (line: string) => void): Promise<void> {
  const missing = await missingPackages(HOST_PACKAGES);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`tools/images needs these Debian packages: ${missing.join(' ')} (install them as root)`);
  }
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['install', '-y', '-q', '--no-install-recommends', ...missing];
  try {
    await run('apt-get', install, { env });
  } catch {
    await run('apt-get', ['update', '-q'], { env });
    await run('apt-get', install, { env });
  }
}
