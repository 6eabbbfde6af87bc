/**
 * `up`: a Kubernetes from parts, in the order kubeadm and kind bring one up:
 *   images → PKI and configs → node namespaces → API forwarder → etcd → kube-apiserver →
 *   kube-controller-manager → kube-scheduler → containerd (+ image import) → kubelet (node Ready) →
 *   kube-proxy → CoreDNS and local-path-provisioner (Available) → ServiceAccount `default`; with
 *   `networkPolicy`, kube-router's firewall (a test enforcer: see kube-router.ts) once its RBAC is applied.
 * With `nodes` > 1, workers join the control plane: each a node of its own (network and mount
 * namespaces, containerd, kubelet, kube-proxy, cgroup, image store, local volumes), plugged into a
 * switch namespace, each routing the others' pod ranges (host-gw); the control plane is tainted
 * NoSchedule (as kind's) and runs only the addons.
 * Each step is timed. If any step fails (or SIGINT/SIGTERM arrives) everything made so far is torn
 * down again before the error is passed on.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { asList, corednsManifests, COREDNS, LOCAL_PATH, localPathManifests } from './addons.js';
import { ApiClient, conditionSummary, conditionTrue, type WithConditions } from './api.js';
import { createCgroup } from './cgroups.js';
import { containerdSpec, storeInUse, writeContainerdFiles } from './containerd.js';
import { cleanImageStore, containerdAnswers } from './image-store.js';
import { daemonsAlive } from './status.js';
import { apiServerSpec, controllerManagerSpec, etcdSpec, schedulerSpec } from './control-plane.js';
import {
  daemonAlive,
  deathNotice,
  startDaemon,
  type Daemon,
  type DaemonContext,
  type DaemonSpec,
} from './daemons.js';
import { cleanEnv, run, runIn, sleep, waitFor, type RunOptions, type RunResult } from './exec.js';
import { clusterImages, importImages, type ClusterImages, type ImageRecord } from './images.js';
import { CONTROL_PLANE_TAINT, kubeletSpec, writeKubeletConfig } from './kubelet.js';
import { kubeProxySpec, writeKubeProxyConfig } from './kube-proxy.js';
import { KUBE_ROUTER_USER, kubeRouterRbac, kubeRouterSpec } from './kube-router.js';
import { writeKubeconfig } from './kubeconfig.js';
import {
  clusterLayout,
  DEFAULT_CLUSTER_NAME,
  MAX_NODES,
  nodeLayouts,
  PORTS,
  type ClusterLayout,
} from './layout.js';
import {
  createNode,
  createSwitch,
  hostRouteConflicts,
  releaseNode,
  routePodRanges,
  setSwitchPort,
  writeNodeResolvConf,
  type SwitchPlug,
} from './node.js';
import {
  createPki,
  issueNodeCerts,
  nodeCertFiles,
  pkiFiles,
  type CertFiles,
  type ClusterPki,
} from './pki.js';
import { listening } from './probes.js';
import { readState, writeState, type ClusterState } from './state.js';
import { killNamespaceStragglers, leftovers, teardown, type DownReport } from './teardown.js';
import { killCgroupTree, removeCgroupTree } from './cgroups.js';
import { ensurePackages, locateToolchain, type Toolchain } from './toolchain.js';

export interface UpOptions {
  name?: string;
  stateRoot?: string;
  binDir?: string;
  /** Host loopback port of the API forwarder (0 or unset: a free port). */
  apiPort?: number;
  /** Images to use instead of building them with tools/images (e.g. archives made by a test). */
  images?: ClusterImages;
  /** apt-get install missing host packages first (default true). */
  ensurePackages?: boolean;
  /** Keep the state directory (logs) when `up` fails and tears down. */
  keepDataOnFailure?: boolean;
  /**
   * Enforce NetworkPolicies: run kube-router's firewall as a node daemon (needs ipset, installed with
   * the other packages, and kube-router from scripts/k8s-tools.sh). A TEST ENFORCER: kube-router v2.1.0
   * is flagged for reported security flaws; it runs only inside this cluster's namespaces.
   */
  networkPolicy?: boolean;
  /** Nodes in all: the control plane and nodes - 1 workers (default 1: one untainted node). */
  nodes?: number;
  log?: (line: string) => void;
}

export class ClusterAlreadyUpError extends Error {
  constructor(readonly cluster: Cluster) {
    super(`cluster ${cluster.name} is already up (kubeconfig ${cluster.kubeconfigPath}); \`down\` it first`);
  }
}

/** A running cluster: what the test tier (and `npm run cluster`) drive. */
export class Cluster {
  readonly name: string;
  /** Admin kubeconfig for the host: https://127.0.0.1:<port> through the forwarder. */
  readonly kubeconfigPath: string;
  /** Admin kubeconfig for use inside the namespaces (exec): https://<node>:6443. */
  readonly kubeconfigNodePath: string;
  readonly apiServerUrl: string;
  readonly nodeApiServerUrl: string;
  readonly nodeAddress: string;
  /** Every node's layout, the control plane first. */
  readonly nodes: ClusterLayout[];

  constructor(
    readonly layout: ClusterLayout,
    readonly toolchain: Toolchain,
    readonly state: ClusterState,
  ) {
    this.name = layout.name;
    this.nodes = nodeLayouts(layout, state.nodes ?? 1);
    this.kubeconfigPath = layout.kubeconfig;
    this.kubeconfigNodePath = layout.kubeconfigNode;
    this.apiServerUrl = state.apiServerUrl ?? '';
    this.nodeAddress = layout.network.nodeAddress;
    this.nodeApiServerUrl = `https://${this.nodeAddress}:${PORTS.apiServer}`;
  }

  get kubeVersion(): string {
    return this.toolchain.kubeVersion;
  }

  get timings(): Record<string, number> {
    return this.state.timings ?? {};
  }

  /** The environment for kubectl/helm on the host against this cluster. */
  env(): NodeJS.ProcessEnv {
    return { ...cleanEnv([this.toolchain.binDir]), KUBECONFIG: this.kubeconfigPath };
  }

  /** Runs a command inside the node's network and mount namespaces (KUBECONFIG set, tools on PATH). */
  exec(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.execOn(this.layout.nodeName, argv, opts);
  }

  /** exec() on node `nodeName`. */
  execOn(nodeName: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    const env = { ...cleanEnv([this.toolchain.binDir]), KUBECONFIG: this.kubeconfigNodePath, ...opts.env };
    return runIn(this.node(nodeName).ns, argv, { ...opts, env });
  }

  /** The layout of node `nodeName`. */
  node(nodeName: string): ClusterLayout {
    const found = this.nodes.find((n) => n.nodeName === nodeName);
    if (!found)
      throw new Error(`cluster ${this.name} has no node ${nodeName} (${this.nodeNames().join(', ')})`);
    return found;
  }

  nodeNames(): string[] {
    return this.nodes.map((n) => n.nodeName);
  }

  /** The worker `nodeName` (faults are for workers: the control plane holds the API). */
  private worker(nodeName: string): { layout: ClusterLayout; index: number } {
    const layout = this.node(nodeName);
    const index = this.nodes.indexOf(layout);
    if (index === 0) throw new Error(`${nodeName} is the control plane: node faults are for workers`);
    return { layout, index };
  }

  /**
   * The node loses power: its kubelet, containerd, kube-proxy and every container of it are killed at
   * once (SIGKILL to its cgroup), and its namespaces are released and its cgroups removed, so all it held
   * in memory (/run, the pods' network namespaces, the cgroup tree) is gone. Its disks stay: kubelet root,
   * image store, local volumes. (Cgroups left behind cost the kubelet's cAdvisor about 3 s each at the
   * next start, a minute for a node of pods, before the node can be Ready: no real machine boots so.)
   */
  async killNode(nodeName: string): Promise<{ killed: number }> {
    const { layout } = this.worker(nodeName);
    const inodes = [layout.ns.net, layout.ns.mnt].flatMap((f) => {
      try {
        return [statSync(f).ino];
      } catch {
        return [];
      }
    });
    const killed = (await killCgroupTree(`/${layout.cgroupName}`)).length;
    const stragglers = await killNamespaceStragglers(inodes);
    await releaseNode(layout);
    await removeCgroupTree(`/${layout.cgroupName}`);
    return { killed: killed + stragglers };
  }

  /** A killed node powers on again: namespaces, routes, containerd, kubelet and kube-proxy, then Ready. */
  async startNode(nodeName: string, opts: { log?: Log } = {}): Promise<{ readyMs: number }> {
    const { layout, index } = this.worker(nodeName);
    const t0 = Date.now();
    // The CNI's address leases were kept in memory, as on a node whose IPAM state lives on tmpfs.
    rmSync(layout.cniIpamDir, { recursive: true, force: true });
    mkdirSync(layout.cniIpamDir, { recursive: true });
    await createNode(layout, { switchNs: this.layout.switchNs, index });
    await routePodRanges(this.nodes, [layout]);
    const pki = pkiFiles(layout.pkiDir);
    const api = new ApiClient(this.apiServerUrl, pki.ca.cert, pki.admin);
    const ctx: Ctx = {
      l: this.layout,
      nodes: this.nodes,
      tools: this.toolchain,
      state: this.state,
      log: opts.log ?? (() => {}),
      daemons: [],
      dctx: daemonContext(this.layout),
      api,
      persistState: false,
    };
    try {
      await startNodeDaemons(ctx, layout, index);
    } finally {
      api.close();
    }
    return { readyMs: Date.now() - t0 };
  }

  /** Cuts a running node off every other node (its port on the switch goes down). */
  cutNode(nodeName: string): Promise<void> {
    return setSwitchPort(this.layout.switchNs, this.worker(nodeName).index, false);
  }

  /** Plugs a cut-off node back in. */
  healNode(nodeName: string): Promise<void> {
    return setSwitchPort(this.layout.switchNs, this.worker(nodeName).index, true);
  }

  /** kubectl on the host, through the loopback forwarder. */
  kubectl(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(this.toolchain.bin.kubectl, args, { ...opts, env: { ...this.env(), ...opts.env } });
  }

  /** helm on the host (built by scripts/k8s-tools.sh), against this cluster. */
  helm(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const helm = this.toolchain.helm;
    if (!helm) throw new Error(`helm is not in ${this.toolchain.binDir}: run scripts/k8s-tools.sh`);
    return run(helm, args, { ...opts, env: { ...this.env(), ...opts.env } });
  }

  /** Imports docker-archives from tools/images into every node's containerd. */
  async loadImages(records: ImageRecord[]): Promise<string[]> {
    const imported = await Promise.all(this.nodes.map((n) => importImages(n, records)));
    return [...new Set(imported.flat())];
  }

  /**
   * Restarts kube-apiserver as a control-plane upgrade does: SIGTERM, `downMs` with no API server at
   * all, then the same command line again, until /readyz answers. Everything else (etcd, kubelet,
   * kube-proxy, the pods) keeps running; clients and watches see the API go away and come back.
   */
  async restartApiServer(opts: { downMs?: number } = {}): Promise<{ stoppedMs: number; readyMs: number }> {
    const l = this.layout;
    const t0 = Date.now();
    const pid = daemonAlive(l.pidDir, 'kube-apiserver', 'kube-apiserver');
    if (pid === undefined) throw new Error(`cluster ${this.name}: kube-apiserver is not running`);
    process.kill(pid, 'SIGTERM');
    const gone = async () =>
      daemonAlive(l.pidDir, 'kube-apiserver', 'kube-apiserver') === undefined || undefined;
    await waitFor('kube-apiserver to exit', gone, 30_000, { everyMs: 50 }).catch(async () => {
      process.kill(pid, 'SIGKILL');
      await waitFor('kube-apiserver to exit after SIGKILL', gone, 10_000, { everyMs: 50 });
    });
    const stoppedMs = Date.now() - t0;
    if (opts.downMs) await sleep(opts.downMs);
    const pki = pkiFiles(l.pkiDir);
    const daemon = startDaemon(daemonContext(l), apiServerSpec(l, this.toolchain, pki));
    const api = new ApiClient(this.apiServerUrl, pki.ca.cert, pki.admin);
    try {
      await waitFor(
        'kube-apiserver /readyz after its restart',
        async () => (await api.get('/readyz')).status === 200 || undefined,
        90_000,
        { abort: () => deathNotice(daemon), everyMs: 100 },
      );
    } finally {
      api.close();
    }
    return { stoppedMs, readyMs: Date.now() - t0 };
  }

  /** While a down() runs, another call waits for it rather than tearing down beside it. */
  #down: Promise<DownReport> | undefined;

  down(
    opts: { keepData?: boolean; purge?: boolean; log?: (line: string) => void } = {},
  ): Promise<DownReport> {
    this.#down ??= teardown(this.layout, opts).finally(() => {
      this.#down = undefined;
    });
    return this.#down;
  }

  /**
   * Until the returned function is called, SIGINT or SIGTERM takes this cluster down (joining a down()
   * already under way), runs `also`, and exits as the signal would (130, 143). For whoever keeps a cluster
   * up for a while, a test file above all: Node's default for the signal would end the process at once
   * and leave every daemon, mount and namespace of the cluster behind.
   */
  downOnSignal(opts: { log?: Log; also?: () => void } = {}): () => void {
    const log = opts.log ?? (() => undefined);
    return exitAfterOnSignal(`the cluster ${this.name} goes down`, log, async () => {
      try {
        await this.down({ log });
      } finally {
        opts.also?.();
      }
    }).remove;
  }
}

/** Where the daemons of a cluster log, record their pids, and which cgroup they join. */
function daemonContext(l: ClusterLayout): DaemonContext {
  return { ns: l.ns, logDir: l.logDir, pidDir: l.pidDir, cgroup: `/${l.cgroupName}/system` };
}

type Log = (line: string) => void;

interface Ctx {
  l: ClusterLayout;
  /** Every node, the control plane (l) first. */
  nodes: ClusterLayout[];
  tools: Toolchain;
  state: ClusterState;
  log: Log;
  daemons: Daemon[];
  dctx: DaemonContext;
  /** Made once the PKI exists (apiOf). */
  api?: ApiClient;
  /** Whether timings go to the state file (not for a node started again later). */
  persistState?: boolean;
}

async function timed<T>(ctx: Ctx, label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const result = await fn();
  const ms = Date.now() - t0;
  if (ctx.persistState !== false) {
    ctx.state.timings = { ...ctx.state.timings, [label]: ms };
    writeState(ctx.l, ctx.state);
  }
  ctx.log(`${label.padEnd(34)} ${(ms / 1000).toFixed(1).padStart(6)} s`);
  return result;
}

function apiOf(ctx: Ctx): ApiClient {
  if (!ctx.api) throw new Error('the API client is made after the PKI');
  return ctx.api;
}

function start(ctx: Ctx, spec: DaemonSpec, node?: ClusterLayout): Daemon {
  const d = startDaemon(node && node !== ctx.l ? daemonContext(node) : ctx.dctx, spec);
  ctx.daemons.push(d);
  return d;
}

/** For waits: fail at once, with its log, when any daemon started so far has died. */
function anyDeath(ctx: Ctx): () => string | undefined {
  return () => ctx.daemons.map(deathNotice).find(Boolean);
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function writeKubeconfigs(ctx: Ctx, pki: ClusterPki): void {
  const { l } = ctx;
  const node = `https://${l.network.nodeAddress}:${PORTS.apiServer}`;
  const common = { caFile: pki.ca.cert, clusterName: `bazar-${l.name}` };
  writeKubeconfig({
    ...common,
    file: l.kubeconfig,
    server: ctx.state.apiServerUrl ?? '',
    client: pki.admin,
    user: 'admin',
  });
  writeKubeconfig({ ...common, file: l.kubeconfigNode, server: node, client: pki.admin, user: 'admin' });
  const components: Array<[string, CertFiles, string]> = [
    ['controller-manager', pki.controllerManager, 'system:kube-controller-manager'],
    ['scheduler', pki.scheduler, 'system:kube-scheduler'],
    ['kubelet', pki.kubeletClient, `system:node:${l.nodeName}`],
    ['kube-proxy', pki.kubeProxy, 'system:kube-proxy'],
    ['kube-router', pki.kubeRouter, KUBE_ROUTER_USER],
  ];
  for (const [file, client, user] of components) {
    const kubeconfig = path.join(l.configDir, `${file}.kubeconfig`);
    writeKubeconfig({ ...common, file: kubeconfig, server: node, client, user });
  }
}

/** A worker's own kubelet identity and certificates, and its kube-proxy's kubeconfig. */
async function prepareWorker(ctx: Ctx, pki: ClusterPki, w: ClusterLayout): Promise<void> {
  for (const dir of [w.configDir, w.logDir, w.pidDir, w.localPathDir, w.podLogsDir])
    mkdirSync(dir, { recursive: true });
  const certs = await issueNodeCerts(w.pkiDir, { nodeName: w.nodeName, nodeAddress: w.network.nodeAddress });
  const common = {
    caFile: pki.ca.cert,
    clusterName: `bazar-${w.name}`,
    server: `https://${ctx.l.network.nodeAddress}:${PORTS.apiServer}`,
  };
  writeKubeconfig({
    ...common,
    file: path.join(w.configDir, 'kubelet.kubeconfig'),
    client: certs.kubeletClient,
    user: `system:node:${w.nodeName}`,
  });
  writeKubeconfig({
    ...common,
    file: path.join(w.configDir, 'kube-proxy.kubeconfig'),
    client: pki.kubeProxy,
    user: 'system:kube-proxy',
  });
}

async function prepare(ctx: Ctx, apiPort: number): Promise<ClusterPki> {
  const { l } = ctx;
  for (const dir of [l.configDir, l.logDir, l.pidDir, l.localPathDir, l.podLogsDir])
    mkdirSync(dir, { recursive: true });
  ctx.state.apiPort = apiPort;
  ctx.state.apiServerUrl = `https://127.0.0.1:${apiPort}`;
  const pki = await createPki(l.pkiDir, {
    nodeName: l.nodeName,
    nodeAddress: l.network.nodeAddress,
    kubernetesServiceIp: l.network.kubernetesServiceIp,
    clusterDomain: l.network.clusterDomain,
  });
  writeKubeconfigs(ctx, pki);
  for (const w of ctx.nodes.slice(1)) await prepareWorker(ctx, pki, w);
  return pki;
}

async function startNodes(ctx: Ctx): Promise<void> {
  const multi = ctx.nodes.length > 1;
  if (multi) await createSwitch(ctx.l);
  const plug = (index: number): SwitchPlug | undefined =>
    multi ? { switchNs: ctx.l.switchNs, index } : undefined;
  const ns = await createNode(ctx.l, plug(0));
  Object.assign(ctx.state, {
    netInode: ns.netInode,
    mntInode: ns.mntInode,
    createdVarLibCni: ns.createdVarLibCni,
  });
  writeState(ctx.l, ctx.state);
  createCgroup(ctx.dctx.cgroup);
  for (const [i, w] of ctx.nodes.entries()) {
    if (i === 0) continue;
    await createNode(w, plug(i));
    createCgroup(daemonContext(w).cgroup);
  }
  if (multi) await routePodRanges(ctx.nodes);
}

function forwarderSpec(l: ClusterLayout, port: number): DaemonSpec {
  // One nsenter + socat per connection: a client on the host's loopback reaches the API server on the
  // node address inside the namespace, and nothing is listening anywhere but on 127.0.0.1.
  const target = `TCP\\:${l.network.nodeAddress}\\:${PORTS.apiServer}`;
  return {
    name: 'api-forwarder',
    where: 'host',
    argv: [
      'socat',
      `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`,
      `EXEC:nsenter --net=${l.ns.net} socat STDIO ${target}`,
    ],
  };
}

async function startControlPlane(ctx: Ctx, pki: ClusterPki): Promise<void> {
  const { l, tools } = ctx;
  await timed(ctx, 'etcd', async () => {
    const etcd = start(ctx, etcdSpec(l, tools));
    await waitFor('etcd to listen', async () => listening(etcd.pid, PORTS.etcdClient) || undefined, 30_000, {
      abort: anyDeath(ctx),
      everyMs: 100,
    });
  });
  await timed(ctx, 'kube-apiserver', async () => {
    start(ctx, apiServerSpec(l, tools, pki));
    const api = apiOf(ctx);
    await waitFor(
      'kube-apiserver /readyz',
      async () => (await api.get('/readyz')).status === 200 || undefined,
      90_000,
      {
        abort: anyDeath(ctx),
        everyMs: 250,
      },
    );
  });
  await timed(ctx, 'kube-controller-manager + scheduler', async () => {
    const cm = start(ctx, controllerManagerSpec(l, tools, pki));
    const sched = start(ctx, schedulerSpec(l, tools));
    await waitFor(
      'controller-manager and scheduler to serve',
      async () =>
        (listening(cm.pid, PORTS.controllerManager) && listening(sched.pid, PORTS.scheduler)) || undefined,
      60_000,
      { abort: anyDeath(ctx), everyMs: 200 },
    );
  });
}

/** `label` for the control plane of one node, `label (node)` on every node of several. */
function onNode(ctx: Ctx, label: string, node: ClusterLayout): string {
  return ctx.nodes.length > 1 ? `${label} (${node.nodeName})` : label;
}

async function startContainerd(ctx: Ctx, images: ClusterImages): Promise<void> {
  // Node after node: image imports are disk-bound and the cores are few.
  for (const node of ctx.nodes) {
    const files = writeContainerdFiles(node, images.pause.ref);
    if (storeInUse(node)) {
      await timed(ctx, onNode(ctx, 'image store reuse', node), () =>
        cleanImageStore(node, daemonContext(node), files.maintenance, ctx.log),
      );
    }
    const containerd = await timed(ctx, onNode(ctx, 'containerd', node), () =>
      startNodeContainerd(ctx, node, files.config),
    );
    await timed(ctx, onNode(ctx, 'image import (cluster images)', node), async () => {
      await importImages(node, [images.pause, images.coredns, images.localPathProvisioner, images.busybox]);
    });
    // Usually long done by now; on a reused store it can still be recovering (a kubelet would exit).
    await timed(ctx, onNode(ctx, "containerd's CRI", node), () =>
      criInitialized(containerd.daemon, containerd.logFrom, anyDeath(ctx)),
    );
  }
}

/** containerd on `node`, answering `ctr`; `logFrom` is its log's size before this start (it appends). */
async function startNodeContainerd(
  ctx: Ctx,
  node: ClusterLayout,
  config: string,
): Promise<{ daemon: Daemon; logFrom: number }> {
  const log = path.join(daemonContext(node).logDir, 'containerd.log');
  const logFrom = existsSync(log) ? statSync(log).size : 0;
  const daemon = start(ctx, containerdSpec(config), node);
  await containerdAnswers(node, 30_000, anyDeath(ctx));
  return { daemon, logFrom };
}

function startKubelet(ctx: Ctx, pki: ClusterPki, node: ClusterLayout, index: number): void {
  const multi = ctx.nodes.length > 1;
  const opts =
    index === 0
      ? { taints: multi ? [CONTROL_PLANE_TAINT] : [] }
      : { serving: nodeCertFiles(node.pkiDir, node.nodeName).kubeletServing };
  const config = writeKubeletConfig(node, pki, writeNodeResolvConf(node), opts);
  start(ctx, kubeletSpec(node, ctx.tools, config), node);
}

interface NodeConditions {
  status?: { conditions?: Array<{ type: string; status: string; lastHeartbeatTime?: string }> };
}

/** Whether the node's kubelet has said Ready at or after `since` (whole seconds, as the API keeps it). */
function freshlyReady(node: NodeConditions | undefined, since: number): boolean {
  const ready = node?.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') return false;
  return Date.parse(ready.lastHeartbeatTime ?? '') >= Math.floor(since / 1000) * 1000;
}

/**
 * Until the node's kubelet reports Ready, after `since` if given: a node powered on again still shows
 * its last Ready from before the power loss until the control plane notices it is gone.
 */
async function nodeReady(ctx: Ctx, node: ClusterLayout, timeoutMs = 120_000, since = 0): Promise<void> {
  const api = apiOf(ctx);
  let last: WithConditions | undefined;
  await waitFor(
    `node ${node.nodeName} Ready`,
    async () => {
      last = await api.getJson<WithConditions & NodeConditions>(`/api/v1/nodes/${node.nodeName}`);
      return freshlyReady(last, since) || undefined;
    },
    timeoutMs,
    { abort: anyDeath(ctx), everyMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; ${conditionSummary(last, 'Ready')}`);
  });
}

async function startKubeProxy(ctx: Ctx, node: ClusterLayout): Promise<void> {
  const proxy = start(ctx, kubeProxySpec(ctx.tools, writeKubeProxyConfig(node)), node);
  await waitFor(
    `kube-proxy healthz (${node.nodeName})`,
    async () => listening(proxy.pid, PORTS.kubeProxyHealthz) || undefined,
    30_000,
    { abort: anyDeath(ctx), everyMs: 100 },
  );
}

async function startKubelets(ctx: Ctx, pki: ClusterPki): Promise<void> {
  const multi = ctx.nodes.length > 1;
  await timed(ctx, multi ? 'kubelets (nodes Ready)' : 'kubelet (node Ready)', async () => {
    for (const [i, node] of ctx.nodes.entries()) startKubelet(ctx, pki, node, i);
    await Promise.all(ctx.nodes.map((node) => nodeReady(ctx, node)));
    // Roles as `kubectl get nodes` shows them (a kubelet may not set node-role labels itself).
    if (multi) {
      for (const [i, node] of ctx.nodes.entries()) {
        const role = i === 0 ? 'control-plane' : 'worker';
        await kubectlAdmin(ctx, ['label', 'node', node.nodeName, `node-role.kubernetes.io/${role}=`]);
      }
    }
  });
  for (const node of ctx.nodes) {
    await timed(ctx, onNode(ctx, 'kube-proxy', node), () => startKubeProxy(ctx, node));
  }
}

/**
 * Until containerd's CRI plugin serves (its log says "Start streaming server", the last step before it
 * marks itself initialized): containerd answers `ctr` before that, and on a store a power loss left
 * full of containers the CRI's recovery takes a while, during which a kubelet exits at once ("validate
 * CRI v1 runtime API ...: server is not initialized yet"). A real node's systemd restarts the kubelet;
 * here it starts once the CRI is up. `logFrom`: the log's size before this start.
 */
async function criInitialized(
  containerd: Daemon,
  logFrom: number,
  abort: () => string | undefined,
): Promise<void> {
  await waitFor(
    "containerd's CRI plugin to serve",
    async () => {
      const text = readFileSync(containerd.log, 'utf8').slice(logFrom);
      return text.includes('Start streaming server') || undefined;
    },
    60_000,
    { abort, everyMs: 200 },
  );
  // The flag is set just after that line.
  await sleep(500);
}

/** A worker powered on again: containerd on its kept store, its kubelet (until Ready), kube-proxy. */
async function startNodeDaemons(ctx: Ctx, node: ClusterLayout, index: number): Promise<void> {
  createCgroup(daemonContext(node).cgroup);
  const containerd = await startNodeContainerd(ctx, node, path.join(node.configDir, 'containerd.toml'));
  await criInitialized(containerd.daemon, containerd.logFrom, anyDeath(ctx));
  const since = Date.now();
  startKubelet(ctx, pkiFiles(node.pkiDir), node, index);
  await nodeReady(ctx, node, 180_000, since);
  await startKubeProxy(ctx, node);
}

async function kubectlAdmin(ctx: Ctx, args: string[]): Promise<void> {
  await run(ctx.tools.bin.kubectl, args, {
    env: { ...cleanEnv(), KUBECONFIG: ctx.l.kubeconfig },
    timeoutMs: 60_000,
  });
}

async function applyManifests(ctx: Ctx, yaml: string): Promise<void> {
  await run(ctx.tools.bin.kubectl, ['apply', '--server-side', '--force-conflicts', '-f', '-'], {
    input: yaml,
    env: { ...cleanEnv(), KUBECONFIG: ctx.l.kubeconfig },
    timeoutMs: 60_000,
  });
}

interface DeploymentStatus {
  status?: { readyReplicas?: number; conditions?: Array<{ type: string; status: string }> };
}

async function waitDeployment(ctx: Ctx, ns: string, name: string, timeoutMs = 120_000): Promise<void> {
  const api = apiOf(ctx);
  await waitFor(
    `deployment ${ns}/${name} Available`,
    async () => {
      const d = await api.getJson<DeploymentStatus>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`);
      return (conditionTrue(d, 'Available') && (d?.status?.readyReplicas ?? 0) >= 1) || undefined;
    },
    timeoutMs,
    { abort: anyDeath(ctx), everyMs: 250 },
  );
}

async function startAddons(ctx: Ctx, images: ClusterImages): Promise<void> {
  const { l } = ctx;
  const api = apiOf(ctx);
  await timed(ctx, 'addons applied', () =>
    // One kubectl run for all: each run costs about a second of discovery on these cores.
    applyManifests(
      ctx,
      asList([
        ...corednsManifests(l, images.coredns.ref, ctx.nodes.length - 1),
        ...localPathManifests(
          l,
          {
            coredns: images.coredns.ref,
            localPathProvisioner: images.localPathProvisioner.ref,
            helper: images.busybox.ref,
          },
          ctx.nodes,
        ),
        ...(ctx.state.networkPolicy ? kubeRouterRbac() : []),
      ]),
    ),
  );
  if (ctx.state.networkPolicy) await startKubeRouter(ctx);
  await timed(ctx, 'CoreDNS Available', () => waitDeployment(ctx, COREDNS.namespace, COREDNS.deployment));
  await timed(ctx, 'local-path-provisioner Available', () =>
    waitDeployment(ctx, LOCAL_PATH.namespace, LOCAL_PATH.deployment),
  );
  await timed(ctx, 'ServiceAccount default/default', () =>
    waitFor(
      'the default ServiceAccount',
      async () =>
        (await api.getJson('/api/v1/namespaces/default/serviceaccounts/default')) !== undefined || undefined,
      60_000,
    ),
  );
}

/** kube-router's firewall: up once its health endpoint listens (it exits if its caches do not sync). */
async function startKubeRouter(ctx: Ctx): Promise<void> {
  const binary = ctx.tools.kubeRouter;
  if (!binary) throw new Error(`kube-router is not in ${ctx.tools.binDir}: run scripts/k8s-tools.sh`);
  await timed(ctx, 'kube-router (NetworkPolicy firewall)', async () => {
    const router = start(ctx, kubeRouterSpec(ctx.l, binary));
    await waitFor(
      'kube-router to serve its health endpoint',
      async () => listening(router.pid, PORTS.kubeRouterHealth) || undefined,
      60_000,
      { abort: anyDeath(ctx), everyMs: 200 },
    );
  });
}

/** A Cluster object for a cluster that is up (the test tier reuses one across files). */
export async function attach(
  name = DEFAULT_CLUSTER_NAME,
  opts: { stateRoot?: string; binDir?: string } = {},
): Promise<Cluster> {
  const l = clusterLayout(name, opts.stateRoot ? { stateRoot: opts.stateRoot } : {});
  const state = readState(l);
  if (!state || state.phase !== 'up' || !daemonsAlive(l)) throw new Error(`cluster ${name} is not up`);
  return new Cluster(l, await locateToolchain(opts.binDir), state);
}

/**
 * The first SIGINT or SIGTERM runs `action` (once; a second signal changes nothing), then exits as the
 * signal would: 130, 143. `remove` takes the handlers away; `pending` is the action once it started.
 */
function exitAfterOnSignal(
  what: string,
  log: Log,
  action: () => Promise<unknown>,
): { remove: () => void; pending: () => Promise<unknown> | undefined } {
  let running: Promise<unknown> | undefined;
  const handler = (signal: NodeJS.Signals): void => {
    if (running) return;
    // Whoever reads this process's output may be gone already (`node --test` ends on the same signal):
    // a write to its pipe then fails with EPIPE, which must not end the process before the action is done.
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
    log(`${signal}: ${what} before this process ends`);
    running = action()
      .catch((err: unknown) => log(`${what}: failed: ${String(err)}`))
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    remove: () => {
      process.removeListener('SIGINT', handler);
      process.removeListener('SIGTERM', handler);
    },
    pending: () => running,
  };
}

async function clearEarlierRun(l: ClusterLayout, log: Log): Promise<void> {
  const found = await leftovers(l);
  if (found.length === 0) return;
  log(`cleaning up what an earlier run of cluster ${l.name} left (${found.length} item(s))`);
  const report = await teardown(l, { log });
  if (report.leftovers.length > 0) throw new Error(`could not clean up:\n  ${report.leftovers.join('\n  ')}`);
}

export async function up(opts: UpOptions = {}): Promise<Cluster> {
  const log: Log = opts.log ?? ((line) => process.stderr.write(`[cluster] ${line}\n`));
  if (process.getuid?.() !== 0) throw new Error('the local cluster needs root (namespaces, mounts, cgroups)');
  const l = clusterLayout(
    opts.name ?? DEFAULT_CLUSTER_NAME,
    opts.stateRoot ? { stateRoot: opts.stateRoot } : {},
  );
  const existing = readState(l);
  if (existing?.phase === 'up' && daemonsAlive(l)) {
    throw new ClusterAlreadyUpError(new Cluster(l, await locateToolchain(opts.binDir), existing));
  }
  await clearEarlierRun(l, log);
  const t0 = Date.now();
  const networkPolicy = opts.networkPolicy ?? false;
  const nodeCount = opts.nodes ?? 1;
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > MAX_NODES) {
    throw new Error(`nodes must be 1..${MAX_NODES} (got ${nodeCount})`);
  }
  if (opts.ensurePackages !== false) await ensurePackages(log, { networkPolicy });
  const tools = await locateToolchain(opts.binDir);
  if (networkPolicy && !tools.kubeRouter) {
    throw new Error(`networkPolicy needs kube-router in ${tools.binDir}: run scripts/k8s-tools.sh`);
  }
  const conflicts = await hostRouteConflicts(l);
  if (conflicts.length > 0)
    throw new Error(`the host routes addresses the cluster uses:\n  ${conflicts.join('\n  ')}`);
  log(`Kubernetes ${tools.kubeVersion} from ${tools.binDir}; state in ${l.stateDir}`);
  const images = opts.images ?? (await clusterImagesTimed(log));

  mkdirSync(l.stateDir, { recursive: true });
  const state: ClusterState = {
    name: l.name,
    phase: 'starting',
    startedAt: new Date().toISOString(),
    upPid: process.pid,
    kubeVersion: tools.kubeVersion,
    ...(networkPolicy ? { networkPolicy } : {}),
    ...(nodeCount > 1 ? { nodes: nodeCount } : {}),
  };
  writeState(l, state);
  const ctx: Ctx = {
    l,
    nodes: nodeLayouts(l, nodeCount),
    tools,
    state,
    log,
    daemons: [],
    dctx: daemonContext(l),
  };
  // Interrupted, up tears down what it started; the failing steps then must not start a second teardown.
  const signals = exitAfterOnSignal('up was interrupted: tearing the cluster down', log, () =>
    teardown(l, { log }),
  );
  try {
    const apiPort = opts.apiPort || (await freeLoopbackPort());
    const pki = await timed(ctx, 'PKI and configs', () => prepare(ctx, apiPort));
    ctx.api = new ApiClient(state.apiServerUrl ?? '', pki.ca.cert, pki.admin);
    await timed(ctx, nodeCount > 1 ? 'node namespaces and switch' : 'node namespaces', () => startNodes(ctx));
    start(ctx, forwarderSpec(l, apiPort));
    await startControlPlane(ctx, pki);
    await startContainerd(ctx, images);
    await startKubelets(ctx, pki);
    await startAddons(ctx, images);
    state.phase = 'up';
    state.images = Object.fromEntries(Object.values(images).map((r: ImageRecord) => [r.name, r.ref]));
    state.timings = { ...state.timings, total: Date.now() - t0 };
    writeState(l, state);
    log(`${'cluster up'.padEnd(34)} ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s total`);
    return new Cluster(l, tools, state);
  } catch (err) {
    const signalTeardown = signals.pending();
    if (signalTeardown) {
      await signalTeardown;
      throw err;
    }
    log(`up failed: ${err instanceof Error ? err.message : String(err)}`);
    log('tearing down what was started');
    await teardown(l, { log, keepData: opts.keepDataOnFailure ?? false }).catch((e: unknown) =>
      log(`teardown after failure failed: ${String(e)}`),
    );
    throw err;
  } finally {
    ctx.api?.close();
    signals.remove();
  }
}

async function clusterImagesTimed(log: Log): Promise<ClusterImages> {
  const t0 = Date.now();
  const images = await clusterImages(log);
  log(`${'images (tools/images)'.padEnd(34)} ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s`);
  return images;
}

export async function down(
  name = DEFAULT_CLUSTER_NAME,
  opts: { stateRoot?: string; keepData?: boolean; purge?: boolean; log?: Log } = {},
): Promise<DownReport> {
  const l = clusterLayout(name, opts.stateRoot ? { stateRoot: opts.stateRoot } : {});
  return teardown(l, {
    keepData: opts.keepData ?? false,
    purge: opts.purge ?? false,
    ...(opts.log ? { log: opts.log } : {}),
  });
}
