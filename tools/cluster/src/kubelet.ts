/**
 * The kubelet: cgroupfs under the cluster's own cgroup, cgroup v1 allowed explicitly (from 1.35 it
 * refuses v1 unless `failCgroupV1: false`), oomScoreAdj 0 (no CAP_SYS_RESOURCE: a negative value cannot
 * be written), serving certificate from the cluster CA, webhook authn/authz (so the API server's
 * client certificate is checked for logs, exec and port-forward), the CoreDNS address as cluster DNS.
 *
 * Image garbage collection is pushed to 100 % disk: our images are imported, never pulled, and a GC'd
 * image would be gone for good. Eviction thresholds are small for the same reason (a shared disk).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PORTS, type ClusterLayout } from './layout.js';
import type { DaemonSpec } from './daemons.js';
import type { ClusterPki } from './pki.js';
import type { Toolchain } from './toolchain.js';

/** The taint kubeadm and kind give the control plane of a cluster with workers. */
export const CONTROL_PLANE_TAINT = { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' };

export interface KubeletOptions {
  /** The serving certificate (a worker's own; default the control plane's). */
  serving?: ClusterPki['kubeletServing'];
  /** Taints the node registers with (the control plane of a multi-node cluster). */
  taints?: Array<{ key: string; effect: string }>;
}

export function kubeletConfig(
  l: ClusterLayout,
  pki: ClusterPki,
  resolvConf: string,
  opts: KubeletOptions = {},
): Record<string, unknown> {
  const serving = opts.serving ?? pki.kubeletServing;
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: l.network.nodeAddress,
    port: PORTS.kubelet,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: PORTS.kubeletHealthz,
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: pki.ca.cert },
    },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${l.containerdSocket}`,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${l.cgroupName}`,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ['pods'],
    failCgroupV1: false,
    oomScoreAdj: 0,
    failSwapOn: false,
    clusterDNS: [l.network.dnsServiceIp],
    clusterDomain: l.network.clusterDomain,
    resolvConf,
    podLogsDir: l.podLogsDir,
    kubeReserved: { cpu: '100m', memory: '256Mi' },
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'nodefs.inodesFree': '1%',
      'imagefs.available': '1%',
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    maxPods: 110,
    registerNode: true,
    ...(opts.taints && opts.taints.length > 0 ? { registerWithTaints: opts.taints } : {}),
    containerLogMaxSize: '10Mi',
    containerLogMaxFiles: 2,
    // The node is ready as soon as it says so; a short sync period shortens start-up waits.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    fileCheckFrequency: '20s',
    shutdownGracePeriod: '0s',
    staticPodPath: '',
  };
}

export function writeKubeletConfig(
  l: ClusterLayout,
  pki: ClusterPki,
  resolvConf: string,
  opts: KubeletOptions = {},
): string {
  const file = path.join(l.configDir, 'kubelet.json');
  writeFileSync(file, `${JSON.stringify(kubeletConfig(l, pki, resolvConf, opts), null, 2)}\n`);
  return file;
}

export function kubeletSpec(l: ClusterLayout, tools: Toolchain, configFile: string): DaemonSpec {
  return {
    name: 'kubelet',
    where: 'cluster',
    argv: [
      tools.bin.kubelet,
      `--config=${configFile}`,
      `--kubeconfig=${path.join(l.configDir, 'kubelet.kubeconfig')}`,
      `--root-dir=${l.kubeletRoot}`,
      `--node-ip=${l.network.nodeAddress}`,
      `--hostname-override=${l.nodeName}`,
      '--v=1',
    ],
  };
}
