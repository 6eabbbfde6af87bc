/**
 * The node: a network namespace and ONE private mount namespace, both pinned as files in the state
 * directory, that every daemon enters with `nsenter --net --mount`. (`ip netns exec` would give each
 * command a mount namespace of its own, so the kubelet's tmpfs volumes would be invisible to containerd;
 * `ip netns add` would also leave /run/netns behind as a shared mount.)
 *
 * Inside the mount namespace: tmpfs on /run (containerd 1.6 hardcodes /run/containerd/s and the pods'
 * /run/netns) and on /var/log (the kubelet hardcodes /var/log/containers), and a private directory on
 * /var/lib/cni (libcni's result cache, which containerd 1.6 cannot move). Inside the network
 * namespace: loopback, a veth pair with both ends there whose address exists nowhere else, and a route
 * for the Service range (so processes on the node reach ClusterIPs).
 * Everything is created by `mount -n` so that no /run/mount/utab appears on the host.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterLayout } from './layout.js';
import { run, runIn } from './exec.js';

export const NODE_LINK = 'bz-node';
const PEER_LINK = 'bz-peer';
/** The bridge in the switch namespace of a cluster of several nodes, and node i's port on it. */
export const SWITCH_BRIDGE = 'bz-switch';
export const switchPort = (index: number): string => `bz-port${index}`;

/** Where a node of a multi-node cluster plugs in: the switch namespace and its port's index. */
export interface SwitchPlug {
  switchNs: string;
  index: number;
}
const VAR_LIB_CNI = '/var/lib/cni';

export interface NodeNamespaces {
  netInode: number;
  mntInode: number;
  /** True when /var/lib/cni did not exist and `up` made it (as a mount point); `down` removes it. */
  createdVarLibCni: boolean;
}

/** A directory bind-mounted privately onto itself, so the nsfs binds made in it cannot propagate. */
async function privateDir(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['-n', '--bind', dir, dir]);
  await run('mount', ['-n', '--make-private', dir]);
}

/** Pins the namespaces in <state>/ns. */
async function pinNamespaces(l: ClusterLayout): Promise<void> {
  await privateDir(l.nsDir);
  writeFileSync(l.ns.net, '');
  writeFileSync(l.ns.mnt, '');
  await run('unshare', [`--net=${l.ns.net}`, `--mount=${l.ns.mnt}`, '--propagation', 'private', 'true']);
}

/** The mount points of nsfs mounts in /proc/self/mountinfo (field 5; the fs type follows the " - "). */
const NSFS_MOUNTS = String.raw`sed -n 's/^[0-9]* [0-9]* [^ ]* [^ ]* \([^ ]*\) .* - nsfs .*/\1/p' /proc/self/mountinfo`;

function mountScript(l: ClusterLayout): string {
  return [
    'set -e',
    // The new mount namespace began as a copy of the host's, with its namespace pins: the other
    // nodes' and other clusters'. Those copies would keep those namespaces alive after their own
    // release (a node powered off, another cluster's `down`), so they are dropped here.
    `for m in $(${NSFS_MOUNTS} | sort -r); do umount -n -l "$m"; done`,
    'mount -n -t tmpfs -o mode=0755 bazar-run /run',
    'mount -n -t tmpfs -o mode=0755 bazar-log /var/log',
    `mount -n --bind ${l.cniCacheDir} ${VAR_LIB_CNI}`,
  ].join('\n');
}

function networkScript(l: ClusterLayout, plug?: SwitchPlug): string {
  // One node: both ends of the veth stay inside (the address must sit on a link that is up). Several:
  // the other end is the node's port on the switch, made by plugIn() first.
  const link = plug
    ? []
    : [`ip link add ${NODE_LINK} type veth peer name ${PEER_LINK}`, `ip link set ${PEER_LINK} up`];
  return [
    'set -e',
    'ip link set lo up',
    ...link,
    `ip addr add ${l.network.nodeCidr} dev ${NODE_LINK}`,
    `ip link set ${NODE_LINK} up`,
    // The node has no default route (it has no way out), but a process on the node must reach
    // ClusterIPs as on any node: kube-proxy DNATs them in OUTPUT, after the routing decision, so the
    // Service range needs a route of its own (the packet is routed again, to the pod, once DNATed).
    `ip route add ${l.network.serviceCidr} dev ${NODE_LINK} src ${l.network.nodeAddress}`,
    // Namespaced sysctls (new namespaces start with forwarding off): pods reach the node address and
    // each other through the CNI bridge, and Service traffic on the bridge must pass iptables.
    'sysctl -qw net.ipv4.ip_forward=1',
    'if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then sysctl -qw net.bridge.bridge-nf-call-iptables=1; fi',
  ].join('\n');
}

export async function createNode(l: ClusterLayout, plug?: SwitchPlug): Promise<NodeNamespaces> {
  mkdirSync(l.cniCacheDir, { recursive: true });
  const createdVarLibCni = !existsSync(VAR_LIB_CNI);
  if (createdVarLibCni) mkdirSync(VAR_LIB_CNI, { recursive: true });
  await pinNamespaces(l);
  await runIn(l.ns, ['sh', '-c', mountScript(l)]);
  if (plug) await plugIn(l, plug);
  await runIn(l.ns, ['sh', '-c', networkScript(l, plug)]);
  return {
    netInode: statSync(l.ns.net).ino,
    mntInode: statSync(l.ns.mnt).ino,
    createdVarLibCni,
  };
}

/**
 * The switch of a multi-node cluster: a network namespace of its own (pinned in the control plane's
 * namespace directory, so `down` finds it there) holding one bridge. It has no address: it only
 * forwards frames between the nodes' links, as the top-of-rack switch of a real cluster does.
 */
export async function createSwitch(l: ClusterLayout): Promise<void> {
  await privateDir(path.dirname(l.switchNs));
  writeFileSync(l.switchNs, '');
  await run('unshare', [`--net=${l.switchNs}`, 'true']);
  await inSwitch(l.switchNs, [
    'ip link set lo up',
    `ip link add ${SWITCH_BRIDGE} type bridge`,
    `ip link set ${SWITCH_BRIDGE} up`,
  ]);
}

function inSwitch(switchNs: string, lines: string[]): Promise<unknown> {
  return run('nsenter', [`--net=${switchNs}`, '--', 'sh', '-c', ['set -e', ...lines].join('\n')]);
}

/**
 * A veth from the switch to the node: made in the switch (in the host's mount namespace, where the
 * node's pin file is its namespace: iproute2 takes a path with a '/' as a netns file), the node's end
 * moved into the node as NODE_LINK, the switch's end on the bridge.
 */
async function plugIn(l: ClusterLayout, plug: SwitchPlug): Promise<void> {
  const port = switchPort(plug.index);
  await inSwitch(plug.switchNs, [
    `ip link add ${port} type veth peer name ${NODE_LINK} netns ${l.ns.net}`,
    `ip link set ${port} master ${SWITCH_BRIDGE}`,
    `ip link set ${port} up`,
  ]);
}

/** Cuts node `index` off the others (its port on the switch goes down; the node itself runs on). */
export async function setSwitchPort(switchNs: string, index: number, up: boolean): Promise<void> {
  await inSwitch(switchNs, [`ip link set ${switchPort(index)} ${up ? 'up' : 'down'}`]);
}

/** Every node (of `from`) routes each other node's share of the pod range to its address (host-gw). */
export async function routePodRanges(nodes: ClusterLayout[], from = nodes): Promise<void> {
  for (const node of from) {
    const routes = nodes
      .filter((other) => other !== node)
      .map((o) => `ip route replace ${o.network.nodePodCidr} via ${o.network.nodeAddress} dev ${NODE_LINK}`);
    if (routes.length > 0) await runIn(node.ns, ['sh', '-c', ['set -e', ...routes].join('\n')]);
  }
}

/** The node's resolv.conf for pods with dnsPolicy Default (CoreDNS): the cluster has no way out. */
export function writeNodeResolvConf(l: ClusterLayout): string {
  const file = path.join(l.configDir, 'resolv.conf');
  writeFileSync(
    file,
    `# bazar cluster ${l.name}: offline node, no upstream DNS\nnameserver ${l.network.nodeAddress}\n`,
  );
  return file;
}

/** Addresses the host already routes that would overlap the cluster's ranges (then `up` refuses). */
export async function hostRouteConflicts(l: ClusterLayout): Promise<string[]> {
  const result = await run('ip', ['-4', '-o', 'route', 'show', 'table', 'all'], { allowFailure: true });
  return conflictingRoutes(result.stdout.split('\n'), [
    l.network.nodeCidr,
    l.network.podCidr,
    l.network.serviceCidr,
  ]);
}

const ROUTE_TYPES = new Set([
  'local',
  'broadcast',
  'unicast',
  'multicast',
  'anycast',
  'unreachable',
  'blackhole',
  'prohibit',
  'throw',
  'nat',
]);

/** The lines of `ip -o route` whose destination overlaps one of `cidrs` (default routes aside). */
export function conflictingRoutes(lines: string[], cidrs: string[]): string[] {
  const ours = cidrs.map(parseCidr);
  const conflicts: string[] = [];
  for (const line of lines) {
    const words = line.trim().split(/\s+/);
    const dst = ROUTE_TYPES.has(words[0] ?? '') ? words[1] : words[0];
    if (!dst || !/^\d/.test(dst)) continue;
    const route = parseCidr(dst.includes('/') ? dst : `${dst}/32`);
    // Very short prefixes are catch-alls (0.0.0.0/1 halves of a VPN default), not someone's network.
    if (route.bits < 8) continue;
    if (ours.some((o) => overlaps(o, route))) conflicts.push(line.trim());
  }
  return conflicts;
}

interface Cidr {
  base: number;
  bits: number;
}

function parseCidr(cidr: string): Cidr {
  const [ip = '', bits = '32'] = cidr.split('/');
  const base = ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return { base, bits: Number(bits) };
}

function overlaps(a: Cidr, b: Cidr): boolean {
  // Two ranges overlap iff they agree on the shorter prefix.
  const size = 2 ** (32 - Math.min(a.bits, b.bits));
  return Math.floor(a.base / size) === Math.floor(b.base / size);
}

/**
 * Releases a node's pinned namespaces once its processes are gone: the namespaces vanish with all they
 * hold (its /run and /var/log, the pods' network namespaces, its link to the switch), as at a power cut.
 */
export async function releaseNode(l: ClusterLayout): Promise<void> {
  for (const target of [l.ns.net, l.ns.mnt, l.nsDir]) {
    const r = await run('umount', ['-n', target], { allowFailure: true });
    if (r.code !== 0) await run('umount', ['-n', '-l', target], { allowFailure: true });
  }
}
