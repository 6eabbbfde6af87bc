/**
 * The control plane, all inside the cluster's network namespace: etcd on the namespace's loopback,
 * kube-apiserver on the node address (so pods reach it as the `kubernetes` Service through kube-proxy),
 * kube-controller-manager (EndpointSlices, ReplicaSets, StatefulSets, PV binding, ServiceAccounts and
 * their tokens, the node lifecycle) and kube-scheduler, both on one client certificate each.
 */
import path from 'node:path';
import { PORTS, type ClusterLayout } from './layout.js';
import type { DaemonSpec } from './daemons.js';
import type { ClusterPki } from './pki.js';
import type { Toolchain } from './toolchain.js';

export function etcdSpec(l: ClusterLayout, tools: Toolchain): DaemonSpec {
  const client = `http://127.0.0.1:${PORTS.etcdClient}`;
  const peer = `http://127.0.0.1:${PORTS.etcdPeer}`;
  return {
    name: 'etcd',
    where: 'cluster',
    argv: [
      tools.bin.etcd,
      '--name=node',
      `--data-dir=${l.etcdDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=node=${peer}`,
      // A throwaway test cluster: fsync per commit would make every write wait on this shared disk.
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ],
  };
}

export function apiServerSpec(l: ClusterLayout, tools: Toolchain, pki: ClusterPki): DaemonSpec {
  return {
    name: 'kube-apiserver',
    where: 'cluster',
    argv: [
      tools.bin['kube-apiserver'],
      `--etcd-servers=http://127.0.0.1:${PORTS.etcdClient}`,
      '--bind-address=0.0.0.0',
      `--secure-port=${PORTS.apiServer}`,
      `--advertise-address=${l.network.nodeAddress}`,
      `--tls-cert-file=${pki.apiServer.cert}`,
      `--tls-private-key-file=${pki.apiServer.key}`,
      `--client-ca-file=${pki.ca.cert}`,
      `--kubelet-client-certificate=${pki.apiServerKubeletClient.cert}`,
      `--kubelet-client-key=${pki.apiServerKubeletClient.key}`,
      `--kubelet-certificate-authority=${pki.ca.cert}`,
      '--kubelet-preferred-address-types=InternalIP',
      `--service-cluster-ip-range=${l.network.serviceCidr}`,
      `--service-account-issuer=https://kubernetes.default.svc.${l.network.clusterDomain}`,
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      `--requestheader-client-ca-file=${pki.ca.cert}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki.frontProxyClient.cert}`,
      `--proxy-client-key-file=${pki.frontProxyClient.key}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      '--profiling=false',
      // End open watches promptly on SIGTERM instead of holding shutdown for a minute.
      '--shutdown-watch-termination-grace-period=2s',
      `--cert-dir=${path.join(l.stateDir, 'apiserver-certs')}`,
    ],
  };
}

export function controllerManagerSpec(l: ClusterLayout, tools: Toolchain, pki: ClusterPki): DaemonSpec {
  const kubeconfig = path.join(l.configDir, 'controller-manager.kubeconfig');
  return {
    name: 'kube-controller-manager',
    where: 'cluster',
    argv: [
      tools.bin['kube-controller-manager'],
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${PORTS.controllerManager}`,
      `--cert-dir=${path.join(l.stateDir, 'controller-manager-certs')}`,
      // One instance: no leader election (saves its lease round trips and the start-up wait).
      '--leader-elect=false',
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.ca.cert}`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${pki.ca.cert}`,
      `--cluster-signing-key-file=${pki.ca.key}`,
      `--service-cluster-ip-range=${l.network.serviceCidr}`,
      `--cluster-cidr=${l.network.podCidr}`,
      // The CNI bridge's range is fixed (one node): no node CIDR allocation needed.
      '--allocate-node-cidrs=false',
      '--profiling=false',
    ],
  };
}

export function schedulerSpec(l: ClusterLayout, tools: Toolchain): DaemonSpec {
  const kubeconfig = path.join(l.configDir, 'scheduler.kubeconfig');
  return {
    name: 'kube-scheduler',
    where: 'cluster',
    argv: [
      tools.bin['kube-scheduler'],
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${PORTS.scheduler}`,
      `--cert-dir=${path.join(l.stateDir, 'scheduler-certs')}`,
      '--leader-elect=false',
      '--profiling=false',
    ],
  };
}
