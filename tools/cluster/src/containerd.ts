/**
 * containerd 1.6 (Debian) with its CRI plugin, root and state of its own (state on the mount
 * namespace's /run tmpfs), cgroupfs, the CNI bridge, and the pause stand-in as sandbox image.
 *
 * `restrict_oom_score_adj = true` is what makes pods start here at all: root on these machines lacks
 * CAP_SYS_RESOURCE, so runc's write of a negative oom_score_adj (the pause container's -998) fails and
 * every sandbox dies with "can't get final child's PID from pipe: EOF"; restricted, containerd never
 * asks for less than its own score (0).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterLayout } from './layout.js';
import type { DaemonSpec } from './daemons.js';
import { CNI_BIN_DIR } from './toolchain.js';

/**
 * `maintenance`: the CRI plugin disabled. The image store outlives clusters, and with it the metadata of
 * the last cluster's sandboxes and containers; they are removed by a containerd without CRI first, so
 * that the CRI plugin never recovers pods of a cluster that no longer exists.
 */
export function containerdConfig(l: ClusterLayout, sandboxImage: string, maintenance = false): string {
  return `# Written by tools/cluster (bazar cluster ${l.name}); containerd 1.6 config format.
version = 2
root = "${l.containerdRoot}"
state = "${l.containerdState}"
oom_score = 0
# opt would create /opt/containerd on the host; the others are snapshotters this node has no use for.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",${maintenance ? '\n  "io.containerd.grpc.v1.cri",' : ''}
]

[grpc]
  address = "${l.containerdSocket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  restrict_oom_score_adj = true
  enable_selinux = false
  # The API server reaches the streaming server (exec, logs, port-forward) through the kubelet.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${l.cniConfDir}"
`;
}

/** One bridge for the node's pods, host-local addresses, hostPort support (portmap). */
export function cniConfig(l: ClusterLayout): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'bazar',
      plugins: [
        {
          type: 'bridge',
          bridge: 'bz0',
          isGateway: true,
          // Nothing leaves the namespace, so no masquerading; hairpin lets a pod reach itself
          // through its own Service's ClusterIP.
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: l.cniIpamDir,
            ranges: [[{ subnet: l.network.nodePodCidr, gateway: l.network.podGateway }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export function writeContainerdFiles(
  l: ClusterLayout,
  sandboxImage: string,
): { config: string; maintenance: string } {
  mkdirSync(l.containerdRoot, { recursive: true });
  mkdirSync(l.cniConfDir, { recursive: true });
  mkdirSync(l.cniIpamDir, { recursive: true });
  writeFileSync(path.join(l.cniConfDir, '10-bazar.conflist'), `${cniConfig(l)}\n`);
  const config = path.join(l.configDir, 'containerd.toml');
  writeFileSync(config, containerdConfig(l, sandboxImage));
  const maintenance = path.join(l.configDir, 'containerd-maintenance.toml');
  writeFileSync(maintenance, containerdConfig(l, sandboxImage, true));
  return { config, maintenance };
}

/** Whether the image store holds a previous cluster's metadata (then it needs the maintenance pass). */
export function storeInUse(l: ClusterLayout): boolean {
  return existsSync(path.join(l.containerdRoot, 'io.containerd.metadata.v1.bolt', 'meta.db'));
}

/** The CRI plugin's per-sandbox and per-container directories (status, logs) of the last cluster. */
export function removeCriDirs(l: ClusterLayout): void {
  for (const dir of ['containers', 'sandboxes']) {
    rmSync(path.join(l.containerdRoot, 'io.containerd.grpc.v1.cri', dir), { recursive: true, force: true });
  }
}

export function containerdSpec(configFile: string, name = 'containerd'): DaemonSpec {
  return { name, where: 'cluster', argv: ['containerd', '--config', configFile] };
}

/** `ctr` against this cluster's containerd, in the k8s.io namespace the CRI plugin uses. */
export function ctrArgv(l: ClusterLayout, args: string[]): string[] {
  return ['ctr', '--address', l.containerdSocket, '--namespace', 'k8s.io', ...args];
}
