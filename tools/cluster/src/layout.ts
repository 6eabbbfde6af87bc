/**
 * Where a cluster lives and which addresses it uses. Everything of one cluster is derived from its name,
 * so `down NAME` can find (and remove) all of it even when `up` died half-way and left no state file.
 *
 * Addresses: the node's address exists only inside the cluster's network namespace (a veth pair with
 * both ends there), and the pod and service ranges are routed nowhere else. 10.213.0.0/24 is taken by
 * the API-server test tier's namespace (scripts/run-tests.mjs), so the cluster uses other parts of
 * 10.213.0.0/16; `up` refuses to start if the host routes any of them.
 */
import os from 'node:os';
import path from 'node:path';

export interface ClusterNetwork {
  /** The node's address (kubelet --node-ip, the API server's advertise address), with its prefix. */
  nodeCidr: string;
  nodeAddress: string;
  /** All pods (kube-proxy's clusterCIDR) and the single node's share of it (the CNI bridge's range). */
  podCidr: string;
  nodePodCidr: string;
  podGateway: string;
  serviceCidr: string;
  /** The `kubernetes` Service's ClusterIP (first address of serviceCidr) and the cluster DNS address. */
  kubernetesServiceIp: string;
  dnsServiceIp: string;
  clusterDomain: string;
}

export const DEFAULT_NETWORK: ClusterNetwork = {
  nodeCidr: '10.213.1.1/24',
  nodeAddress: '10.213.1.1',
  podCidr: '10.213.64.0/18',
  nodePodCidr: '10.213.64.0/24',
  podGateway: '10.213.64.1',
  serviceCidr: '10.213.128.0/20',
  kubernetesServiceIp: '10.213.128.1',
  dnsServiceIp: '10.213.128.10',
  clusterDomain: 'cluster.local',
};

/** Ports inside the network namespace (nothing else binds there, so they are fixed). */
export const PORTS = {
  etcdClient: 2379,
  etcdPeer: 2380,
  apiServer: 6443,
  controllerManager: 10257,
  scheduler: 10259,
  kubelet: 10250,
  kubeletHealthz: 10248,
  kubeProxyHealthz: 10256,
  kubeProxyMetrics: 10249,
  /** kube-router's health endpoint (only with up({ networkPolicy: true })). */
  kubeRouterHealth: 20244,
} as const;

export interface ClusterLayout {
  name: string;
  nodeName: string;
  /** Everything the cluster writes; removed by `down` unless --keep-data. */
  stateDir: string;
  /** The parent of stateDir; removed by `down` once empty, if it was ours. */
  stateRoot: string;
  /** The directory bind-mounted privately onto itself that holds the pinned namespace files. */
  nsDir: string;
  ns: { net: string; mnt: string };
  /**
   * A cluster of several nodes: the network namespace that holds their "switch" (a bridge every node's
   * link is plugged into), pinned beside the control plane's namespaces. Cutting a node off is taking
   * its port on this bridge down.
   */
  switchNs: string;
  pkiDir: string;
  configDir: string;
  logDir: string;
  pidDir: string;
  etcdDir: string;
  /**
   * The node's image store (containerd's root), kept between clusters of this name in the user cache so
   * that `up` after `down` neither re-imports images nor `down` spends half a minute deleting unpacked
   * layers; `down --purge` removes it.
   */
  imageCacheDir: string;
  containerdRoot: string;
  /** Inside the mount namespace /run is a tmpfs of its own; containerd 1.6 hardcodes /run/containerd/s. */
  containerdState: string;
  containerdSocket: string;
  kubeletRoot: string;
  podLogsDir: string;
  cniConfDir: string;
  cniIpamDir: string;
  cniCacheDir: string;
  localPathDir: string;
  stateFile: string;
  /** Kubeconfigs: admin via the loopback forwarder (host), admin inside the namespace (node). */
  kubeconfig: string;
  kubeconfigNode: string;
  /** The cgroup (in every v1 hierarchy) that holds every process of the cluster, pods included. */
  cgroupName: string;
  network: ClusterNetwork;
}

/** The cluster `npm run cluster` and `up()` use unless told otherwise. */
export const DEFAULT_CLUSTER_NAME = 'bazar';

const NAME_RE = /^[a-z][a-z0-9-]{0,19}$/;

export function validateName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new Error(`cluster name must match ${NAME_RE.source} (got "${name}")`);
  }
  return name;
}

/** The state root: BAZAR_CLUSTER_DIR, else /var/tmp/bazar-cluster (kept off /tmp cleaners, off the repo). */
export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.BAZAR_CLUSTER_DIR || path.join('/var/tmp', 'bazar-cluster'));
}

export function clusterLayout(name: string, opts: { stateRoot?: string } = {}): ClusterLayout {
  validateName(name);
  const root = opts.stateRoot ?? stateRoot();
  const stateDir = path.join(root, name);
  // socat's EXEC address and several config formats split on whitespace: keep paths plain.
  if (/[^A-Za-z0-9._/-]/.test(stateDir)) {
    throw new Error(
      `the cluster state directory must be a plain path (letters, digits, . _ - /): ${stateDir}`,
    );
  }
  const nsDir = path.join(stateDir, 'ns');
  return {
    name,
    nodeName: `${name}-control-plane`,
    stateDir,
    stateRoot: root,
    nsDir,
    ns: { net: path.join(nsDir, 'net'), mnt: path.join(nsDir, 'mnt') },
    switchNs: path.join(stateDir, 'switch', 'net'),
    pkiDir: path.join(stateDir, 'pki'),
    configDir: path.join(stateDir, 'config'),
    logDir: path.join(stateDir, 'logs'),
    pidDir: path.join(stateDir, 'pids'),
    etcdDir: path.join(stateDir, 'etcd'),
    imageCacheDir: path.join(cacheRoot(), name),
    containerdRoot: path.join(cacheRoot(), name, 'containerd'),
    containerdState: '/run/containerd',
    containerdSocket: '/run/containerd/containerd.sock',
    kubeletRoot: path.join(stateDir, 'kubelet'),
    podLogsDir: path.join(stateDir, 'pod-logs'),
    cniConfDir: path.join(stateDir, 'cni', 'net.d'),
    cniIpamDir: path.join(stateDir, 'cni', 'ipam'),
    cniCacheDir: path.join(stateDir, 'cni', 'cache'),
    localPathDir: path.join(stateDir, 'local-path'),
    stateFile: path.join(stateDir, 'cluster.json'),
    kubeconfig: path.join(stateDir, 'kubeconfig'),
    kubeconfigNode: path.join(stateDir, 'kubeconfig-node'),
    cgroupName: `bazar-cluster-${name}`,
    network: DEFAULT_NETWORK,
  };
}

/** At most this many nodes: one control plane and workers, each with a /24 of the pod range. */
export const MAX_NODES = 8;

/** The name of node `index` (0: the control plane), as kind names them. */
export function nodeName(cluster: string, index: number): string {
  if (index === 0) return `${cluster}-control-plane`;
  return index === 1 ? `${cluster}-worker` : `${cluster}-worker${index}`;
}

/**
 * The layout of node `index` of a cluster: the control plane's is the cluster's own (index 0); a
 * worker's has namespaces, configs, logs, pids, kubelet root, CNI state, local volumes and cgroup of its
 * own under <state>/nodes/<node>, its own image store, its own address on the nodes' /24 and its own
 * /24 of the pod range (routed to it by every other node).
 */
export function nodeLayout(l: ClusterLayout, index: number): ClusterLayout {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_NODES) {
    throw new Error(`node index must be 0..${MAX_NODES - 1} (got ${index})`);
  }
  if (index === 0) return l;
  const name = nodeName(l.name, index);
  const dir = path.join(l.stateDir, 'nodes', name);
  const nsDir = path.join(dir, 'ns');
  const address = `10.213.1.${index + 1}`;
  const imageCacheDir = path.join(l.imageCacheDir, 'nodes', name);
  return {
    ...l,
    nodeName: name,
    nsDir,
    ns: { net: path.join(nsDir, 'net'), mnt: path.join(nsDir, 'mnt') },
    configDir: path.join(dir, 'config'),
    logDir: path.join(dir, 'logs'),
    pidDir: path.join(dir, 'pids'),
    imageCacheDir,
    containerdRoot: path.join(imageCacheDir, 'containerd'),
    kubeletRoot: path.join(dir, 'kubelet'),
    podLogsDir: path.join(dir, 'pod-logs'),
    cniConfDir: path.join(dir, 'cni', 'net.d'),
    cniIpamDir: path.join(dir, 'cni', 'ipam'),
    cniCacheDir: path.join(dir, 'cni', 'cache'),
    localPathDir: path.join(dir, 'local-path'),
    cgroupName: `${l.cgroupName}/${name}`,
    network: {
      ...l.network,
      nodeCidr: `${address}/24`,
      nodeAddress: address,
      nodePodCidr: `10.213.${64 + index}.0/24`,
      podGateway: `10.213.${64 + index}.1`,
    },
  };
}

/** The layouts of a cluster of `count` nodes, the control plane first. */
export function nodeLayouts(l: ClusterLayout, count: number): ClusterLayout[] {
  return Array.from({ length: count }, (_, i) => nodeLayout(l, i));
}

/** The cluster's own cache (image stores): BAZAR_CLUSTER_CACHE, else ~/.cache/bazar-cluster. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.BAZAR_CLUSTER_CACHE || path.join(os.homedir(), '.cache', 'bazar-cluster'));
}

/** The user cache holding the tool binaries (scripts/k8s-tools.sh), never removed by `down`. */
export function defaultToolsBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BAZAR_TOOLS_BIN) return env.BAZAR_TOOLS_BIN;
  return path.join(env.BAZAR_TOOLS_DIR || path.join(os.homedir(), '.cache', 'bazar-tools'), 'bin');
}
