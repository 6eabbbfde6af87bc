/**
 * What the cluster runs: the Kubernetes binaries built by scripts/k8s-tools.sh (cached outside the repo)
 * and the node's parts from Debian packages. `ensurePackages` apt-installs only what is missing, so a
 * fresh machine gets containerd, runc, the CNI plugins and the small tools the daemons call.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { defaultToolsBinDir } from './layout.js';
import { run } from './exec.js';

/** Binaries from scripts/k8s-tools.sh. */
export const KUBE_BINARIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
  'kubectl',
] as const;
export type KubeBinary = (typeof KUBE_BINARIES)[number];

/**
 * Host programs the daemons (or we) run, and the Debian package that ships each. The CNI plugins are
 * files, not commands on PATH: containerd calls them from /usr/lib/cni.
 */
export const HOST_REQUIREMENTS: ReadonlyArray<{ file: string; pkg: string; why: string }> = [
  { file: 'nsenter', pkg: 'util-linux', why: 'enter the cluster namespaces' },
  { file: 'unshare', pkg: 'util-linux', why: 'create the pinned namespaces' },
  { file: 'mount', pkg: 'mount', why: 'tmpfs and bind mounts in the mount namespace; kubelet volumes' },
  { file: 'ip', pkg: 'iproute2', why: 'the node veth pair' },
  { file: 'sysctl', pkg: 'procps', why: 'ip_forward inside the network namespace' },
  { file: 'iptables', pkg: 'iptables', why: 'kube-proxy, CNI portmap' },
  { file: 'conntrack', pkg: 'conntrack', why: 'kube-proxy clears stale UDP flows' },
  { file: 'socat', pkg: 'socat', why: 'the loopback forwarder to the API server' },
  { file: 'openssl', pkg: 'openssl', why: 'the cluster PKI' },
  { file: 'containerd', pkg: 'containerd', why: 'container runtime (CRI)' },
  { file: 'containerd-shim-runc-v2', pkg: 'containerd', why: 'container runtime shim' },
  { file: 'ctr', pkg: 'containerd', why: 'image import' },
  { file: 'runc', pkg: 'runc', why: 'OCI runtime' },
  { file: '/usr/lib/cni/bridge', pkg: 'containernetworking-plugins', why: 'pod network' },
  { file: '/usr/lib/cni/host-local', pkg: 'containernetworking-plugins', why: 'pod IPAM' },
  { file: '/usr/lib/cni/portmap', pkg: 'containernetworking-plugins', why: 'hostPort' },
  { file: '/usr/lib/cni/loopback', pkg: 'containernetworking-plugins', why: 'pod loopback' },
];

/** Host programs only a cluster that enforces NetworkPolicies needs (kube-router's firewall). */
export const NETWORK_POLICY_REQUIREMENTS: ReadonlyArray<{ file: string; pkg: string; why: string }> = [
  { file: 'ipset', pkg: 'ipset', why: 'kube-router keeps the NetworkPolicies’ peers in ipsets' },
];

export const CNI_BIN_DIR = '/usr/lib/cni';

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of a command (PATH plus the sbin directories root always has), or undefined. */
export function which(file: string): string | undefined {
  if (file.startsWith('/')) return isExecutable(file) ? file : undefined;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_PATH];
  return dirs.map((d) => path.join(d, file)).find(isExecutable);
}

export function missingHostRequirements(
  opts: { networkPolicy?: boolean } = {},
): Array<{ file: string; pkg: string; why: string }> {
  const wanted = [...HOST_REQUIREMENTS, ...(opts.networkPolicy ? NETWORK_POLICY_REQUIREMENTS : [])];
  return wanted.filter((r) => which(r.file) === undefined);
}

/**
 * apt-get installs the packages of whatever is missing (and nothing else). Needs root; runs
 * `apt-get update` first because a fresh machine's lists may be empty.
 */
export async function ensurePackages(
  log: (line: string) => void = () => {},
  opts: { networkPolicy?: boolean } = {},
): Promise<string[]> {
  const missing = missingHostRequirements(opts);
  const packages = [...new Set(missing.map((m) => m.pkg))].sort();
  if (packages.length === 0) return [];
  if (!which('apt-get')) {
    throw new Error(
      `missing ${missing.map((m) => m.file).join(', ')} and no apt-get to install ${packages.join(' ')}`,
    );
  }
  log(`installing missing packages: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Another build (tools/images) may be running apt at the same time: wait for its lock.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  await run('apt-get', [...lock, 'update', '-qq'], { env, timeoutMs: 600_000 });
  await run('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...packages], {
    env,
    timeoutMs: 900_000,
  });
  const still = missingHostRequirements(opts);
  if (still.length > 0)
    throw new Error(`still missing after apt-get: ${still.map((m) => m.file).join(', ')}`);
  return packages;
}

export interface Toolchain {
  binDir: string;
  bin: Record<KubeBinary, string>;
  helm?: string;
  /** kube-router (scripts/k8s-tools.sh), the NetworkPolicy enforcer of up({ networkPolicy: true }). */
  kubeRouter?: string;
  kubeVersion: string;
}

export function missingKubeBinaries(binDir = defaultToolsBinDir()): string[] {
  return KUBE_BINARIES.filter((b) => !isExecutable(path.join(binDir, b)));
}

/** Locates the Kubernetes binaries and reads the version the kubelet reports. */
export async function locateToolchain(binDir = defaultToolsBinDir()): Promise<Toolchain> {
  const missing = missingKubeBinaries(binDir);
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')} in ${binDir}: build them with \`bash scripts/k8s-tools.sh\` (from the repo root)`,
    );
  }
  const bin = Object.fromEntries(KUBE_BINARIES.map((b) => [b, path.join(binDir, b)])) as Record<
    KubeBinary,
    string
  >;
  const version = await run(bin.kubelet, ['--version'], { timeoutMs: 20_000 });
  const kubeVersion = /v\d+\.\d+\.\d+\S*/.exec(version.stdout)?.[0] ?? version.stdout.trim();
  const helm = path.join(binDir, 'helm');
  const kubeRouter = path.join(binDir, 'kube-router');
  return {
    binDir,
    bin,
    kubeVersion,
    ...(existsSync(helm) ? { helm } : {}),
    ...(isExecutable(kubeRouter) ? { kubeRouter } : {}),
  };
}
