/**
 * `npm run cluster -- <command>`: the local Kubernetes (one node, or a control plane and workers).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { attach, ClusterAlreadyUpError, down, up, type Cluster } from './cluster.js';
import { status } from './status.js';
import { nsenterArgs, cleanEnv } from './exec.js';
import {
  buildImages,
  clusterImages,
  ensureImageBuildPackages,
  importArchives,
  podImages,
  type ImageRecord,
} from './images.js';
import { ensurePackages, locateToolchain } from './toolchain.js';
import { defaultToolsBinDir } from './layout.js';

const USAGE = `Usage: npm run cluster -- <command> [options]

A Kubernetes built from parts on this machine (root): etcd, kube-apiserver, controller-manager,
scheduler, containerd, kubelet, kube-proxy, CoreDNS and local-path-provisioner (default StorageClass
"standard"), inside a network + mount namespace of its own; with --nodes N, a control plane and N-1
workers, each a node of its own (namespaces, containerd, kubelet, kube-proxy, local volumes), plugged
into one switch, pod ranges routed between them.

Commands:
  prepare [--all-images] [--network-policy] [--packages-only]
                           what up needs from the network, done ahead: apt-get the missing host
                           packages (the node's and the image builds'), check the Kubernetes
                           binaries, build the cluster's images (--all-images: every pod image: our
                           services and the stand-ins too; --network-policy: also ipset, for up
                           --network-policy; --packages-only: the packages and nothing else, so it
                           can run before scripts/k8s-tools.sh has built the binaries)
  up [--nodes N] [--network-policy]
                           start the cluster (builds missing images with tools/images);
                           --nodes N: a control plane (tainted NoSchedule, running the addons) and
                           N-1 workers (default 1: one untainted node; at most 8);
                           --network-policy: enforce NetworkPolicies with kube-router's firewall
                           (a TEST enforcer: kube-router v2.1.0 is flagged for reported security
                           flaws; it runs only inside the cluster's own namespaces; one node only)
  down [--keep-data] [--purge]
                           stop it and remove everything (processes, mounts, cgroups, namespaces,
                           state); --keep-data keeps the state directory (logs, etcd); the node's
                           image store stays in the cache (~/.cache/bazar-cluster/NAME) unless --purge
  status                   what runs, and anything left behind
  kubeconfig               print the host kubeconfig's path (export KUBECONFIG=$(...))
  load [archive|name...]   import docker-archives, or tools/images images by name (none named:
                           all of them: our services and the stand-ins) into the node
  exec [--name=N] [--node=NODE] <cmd...>
                           run a command inside a node's namespaces (default the control plane;
                           kubectl, helm, curl ... with KUBECONFIG set and the tools on PATH)
  node kill|start|cut|heal NODE
                           a worker's faults: kill (power loss: its kubelet, containerd, kube-proxy
                           and every container SIGKILLed at once, its memory gone, its disks kept),
                           start (power it on again: it rejoins), cut (its link to the other nodes
                           down, everything on it running on), heal (the link up again)

Options:
  --name NAME              cluster name (default bazar); clusters have separate state
  --api-port N             host loopback port of the API server forwarder (default: a free port)
  -h, --help

Environment: BAZAR_CLUSTER_DIR (state root, default /var/tmp/bazar-cluster), BAZAR_CLUSTER_CACHE
(image stores, default ~/.cache/bazar-cluster),
BAZAR_TOOLS_DIR / BAZAR_TOOLS_BIN (Kubernetes binaries from scripts/k8s-tools.sh).
`;

/** tools/images writes the helm values for the images it built here (see `npm run images -- values`). */
function chartValuesFile(): string {
  const base = process.env.BAZAR_CACHE_DIR || path.join(os.homedir(), '.cache', 'bazar');
  return path.join(base, 'images', 'chart-values.yaml');
}

function printUp(c: Cluster): void {
  const kc = c.kubeconfigPath;
  process.stdout.write(
    [
      '',
      `cluster ${c.name} is up: Kubernetes ${c.kubeVersion}, node ${c.layout.nodeName} at ${c.nodeAddress}`,
      `  kubeconfig (host):  ${kc}   (API server via 127.0.0.1 → ${c.nodeApiServerUrl})`,
      '',
      'Use it from this shell:',
      `  export KUBECONFIG=${kc} PATH=${c.toolchain.binDir}:$PATH`,
      '  kubectl get pods -A',
      '  npm run cluster -- load                        # our images and the stand-ins (tools/images)',
      `  helm install bazar charts/bazar -f ${chartValuesFile()}`,
      '  kubectl port-forward svc/bazar-front 8080:80   # then curl http://127.0.0.1:8080/...',
      'or inside the node:',
      `  npm run cluster -- exec kubectl get pods -A`,
      `Stop it: npm run cluster -- down`,
      '',
    ].join('\n'),
  );
}

async function cmdUp(
  name: string,
  apiPort: number | undefined,
  networkPolicy: boolean,
  nodes: number,
): Promise<number> {
  if (networkPolicy && nodes > 1) throw new Error('--network-policy runs on one node only');
  try {
    const c = await up({ name, networkPolicy, nodes, ...(apiPort ? { apiPort } : {}) });
    printUp(c);
    return 0;
  } catch (err) {
    if (err instanceof ClusterAlreadyUpError) {
      process.stdout.write(`cluster ${name} is already up\n`);
      printUp(err.cluster);
      return 0;
    }
    throw err;
  }
}

/** Everything that needs the network, so that `up` can then run where there is none (a test netns). */
async function cmdPrepare(
  allImages: boolean,
  networkPolicy: boolean,
  packagesOnly: boolean,
): Promise<number> {
  const t0 = Date.now();
  const log = (line: string): void => void process.stderr.write(`[cluster] ${line}\n`);
  const installed = await ensurePackages(log, { networkPolicy });
  await ensureImageBuildPackages(log);
  if (packagesOnly) {
    process.stdout.write(
      `packages: ${installed.length > 0 ? `installed ${installed.join(' ')}` : 'all present'} (and the image builds' packages)\n` +
        `prepared in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  }
  const tools = await locateToolchain();
  const images = allImages ? await podImages() : Object.values(await clusterImages());
  process.stdout.write(
    [
      `packages: ${installed.length > 0 ? `installed ${installed.join(' ')}` : 'all present'}`,
      `Kubernetes ${tools.kubeVersion} in ${tools.binDir}`,
      `images: ${images.map((i) => i.ref).join(', ')}`,
      `prepared in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      '',
    ].join('\n'),
  );
  return 0;
}

async function cmdDown(name: string, keepData: boolean, purge: boolean): Promise<number> {
  const report = await down(name, {
    keepData,
    purge,
    log: (line) => process.stderr.write(`[cluster] ${line}\n`),
  });
  if (report.leftovers.length === 0) {
    process.stdout.write(
      `cluster ${name} is down; leftovers check: nothing left${keepData ? ' (state kept)' : ''}\n`,
    );
    return 0;
  }
  process.stdout.write(`cluster ${name} is down, but these are left:\n  ${report.leftovers.join('\n  ')}\n`);
  return 1;
}

async function cmdStatus(name: string): Promise<number> {
  const s = await status(name);
  const lines = [`cluster ${name}: ${s.state}${s.kubeVersion ? ` (Kubernetes ${s.kubeVersion})` : ''}`];
  if (s.state !== 'down') {
    lines.push(`  state dir:  ${s.stateDir}`);
    if (s.kubeconfig) lines.push(`  kubeconfig: ${s.kubeconfig}  (${s.apiServerUrl})`);
    for (const [d, pid] of Object.entries(s.daemons)) lines.push(`  ${d.padEnd(24)} ${pid ?? 'not running'}`);
  }
  lines.push(
    s.leftovers.length === 0 ? '  leftovers: none' : `  leftovers:\n    ${s.leftovers.join('\n    ')}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  return s.state === 'broken' ? 1 : 0;
}

/**
 * `load`: docker-archive paths as they are, or tools/images names (built or taken from its cache);
 * nothing named: every image of tools/images a pod may run (ours, the stand-ins).
 */
async function cmdLoad(name: string, items: string[]): Promise<number> {
  const cluster = await attach(name);
  const archives = items.filter((i) => i.includes('/') || i.endsWith('.tar'));
  const names = items.filter((i) => !archives.includes(i));
  let records: ImageRecord[] = [];
  if (names.length > 0) records = await buildImages({ only: names });
  else if (archives.length === 0) records = await podImages();
  const fromArchives = await Promise.all(cluster.nodes.map((n) => importArchives(n, archives)));
  const imported = [...(await cluster.loadImages(records)), ...new Set(fromArchives.flat())];
  process.stdout.write(`imported: ${imported.join(', ') || 'nothing (all present)'}\n`);
  return 0;
}

async function cmdNode(name: string, args: string[]): Promise<number> {
  const [action, node] = args;
  if (!node || args.length !== 2) throw new Error('usage: node kill|start|cut|heal NODE');
  const cluster = await attach(name);
  const t0 = Date.now();
  const took = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  switch (action) {
    case 'kill': {
      const { killed } = await cluster.killNode(node);
      process.stdout.write(`${node}: powered off (${killed} process(es) killed) in ${took()}\n`);
      return 0;
    }
    case 'start':
      await cluster.startNode(node);
      process.stdout.write(`${node}: powered on, Ready in ${took()}\n`);
      return 0;
    case 'cut':
      await cluster.cutNode(node);
      process.stdout.write(`${node}: cut off from the other nodes\n`);
      return 0;
    case 'heal':
      await cluster.healNode(node);
      process.stdout.write(`${node}: plugged in again\n`);
      return 0;
    default:
      throw new Error(`unknown node action "${action}": kill, start, cut or heal`);
  }
}

async function cmdExec(name: string, nodeName: string | undefined, argv: string[]): Promise<number> {
  const cluster = await attach(name); // a clear "not up" instead of nsenter's missing file
  const l = nodeName ? cluster.node(nodeName) : cluster.layout;
  const env = { ...cleanEnv([defaultToolsBinDir()]), KUBECONFIG: l.kubeconfigNode };
  const child = spawn('nsenter', nsenterArgs(l.ns, argv.length > 0 ? argv : ['sh']), {
    stdio: 'inherit',
    env,
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  // exec passes everything after its own --name=NAME through, options included.
  const execAt =
    command === 'exec' ? rest.findIndex((a) => !a.startsWith('--name=') && !a.startsWith('--node=')) : -1;
  const own = command === 'exec' ? rest.slice(0, execAt < 0 ? rest.length : execAt) : rest;
  const { values, positionals } = parseArgs({
    args: own,
    strict: true,
    allowPositionals: command === 'load' || command === 'node',
    options: {
      name: { type: 'string', default: 'bazar' },
      'api-port': { type: 'string' },
      nodes: { type: 'string', default: '1' },
      node: { type: 'string' },
      'keep-data': { type: 'boolean', default: false },
      purge: { type: 'boolean', default: false },
      'all-images': { type: 'boolean', default: false },
      'network-policy': { type: 'boolean', default: false },
      'packages-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const name = values.name ?? 'bazar';
  switch (command) {
    case 'prepare':
      return cmdPrepare(
        values['all-images'] ?? false,
        values['network-policy'] ?? false,
        values['packages-only'] ?? false,
      );
    case 'up':
      return cmdUp(
        name,
        values['api-port'] ? Number(values['api-port']) : undefined,
        values['network-policy'] ?? false,
        Number(values.nodes ?? '1'),
      );
    case 'down':
      return cmdDown(name, values['keep-data'] ?? false, values.purge ?? false);
    case 'status':
      return cmdStatus(name);
    case 'kubeconfig':
      process.stdout.write(`${(await attach(name)).kubeconfigPath}\n`);
      return 0;
    case 'load':
      return cmdLoad(name, positionals);
    case 'exec':
      return cmdExec(name, values.node, execAt < 0 ? [] : rest.slice(execAt));
    case 'node':
      return cmdNode(name, positionals);
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
