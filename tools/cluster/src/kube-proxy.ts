/**
 * kube-proxy in iptables mode, inside the network namespace: it programs the namespace's own iptables
 * (nothing on the host), so pods reach the API server and each other through ClusterIPs.
 *
 * Settings that would need sysctls a network namespace cannot write (the global conntrack table size,
 * hashsize) are zeroed, meaning "leave as is"; oomScoreAdj 0 for the same reason as the kubelet's.
 * The config file is written once before start: kube-proxy exits when its config file changes.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PORTS, type ClusterLayout } from './layout.js';
import type { DaemonSpec } from './daemons.js';
import type { Toolchain } from './toolchain.js';

export function kubeProxyConfig(l: ClusterLayout): Record<string, unknown> {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: path.join(l.configDir, 'kube-proxy.kubeconfig') },
    mode: 'iptables',
    hostnameOverride: l.nodeName,
    clusterCIDR: l.network.podCidr,
    healthzBindAddress: `127.0.0.1:${PORTS.kubeProxyHealthz}`,
    metricsBindAddress: `127.0.0.1:${PORTS.kubeProxyMetrics}`,
    oomScoreAdj: 0,
    conntrack: {
      maxPerCore: 0,
      min: 0,
      tcpEstablishedTimeout: '0s',
      tcpCloseWaitTimeout: '0s',
      udpTimeout: '0s',
      udpStreamTimeout: '0s',
    },
    // localhostNodePorts would set route_localnet; NodePorts on the node address are enough here.
    iptables: { localhostNodePorts: false, minSyncPeriod: '1s', syncPeriod: '30s' },
    nodePortAddresses: [l.network.nodeCidr.replace(/\.\d+\//, '.0/')],
  };
}

export function writeKubeProxyConfig(l: ClusterLayout): string {
  const file = path.join(l.configDir, 'kube-proxy.json');
  writeFileSync(file, `${JSON.stringify(kubeProxyConfig(l), null, 2)}\n`);
  return file;
}

export function kubeProxySpec(tools: Toolchain, configFile: string): DaemonSpec {
  return {
    name: 'kube-proxy',
    where: 'cluster',
    argv: [tools.bin['kube-proxy'], `--config=${configFile}`, '--v=1'],
  };
}
