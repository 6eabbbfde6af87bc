/**
 * The settings this machine needs, pinned without starting anything (no root needed): the ones whose
 * absence made pods fail here (oom_score_adj, cgroup v1), the addresses, and the default StorageClass.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corednsManifests, localPathManifests } from './addons.js';
import { containerdConfig, cniConfig } from './containerd.js';
import { CONTROL_PLANE_TAINT, kubeletConfig } from './kubelet.js';
import { kubeProxyConfig } from './kube-proxy.js';
import { KUBE_ROUTER_USER, kubeRouterRbac, kubeRouterSpec } from './kube-router.js';
import { clusterLayout, MAX_NODES, nodeLayout, nodeLayouts } from './layout.js';
import { conflictingRoutes } from './node.js';
import { pkiFiles } from './pki.js';

const l = clusterLayout('unit', { stateRoot: '/var/tmp/bazar-cluster-unit' });
const pki = pkiFiles(l.pkiDir);

test('containerd never asks for a negative oom_score_adj and uses cgroupfs, the pause stand-in and our CNI dir', () => {
  const toml = containerdConfig(l, 'localhost/bazar-standin/pause:3.10');
  assert.match(toml, /restrict_oom_score_adj = true/);
  assert.match(toml, /SystemdCgroup = false/);
  assert.match(toml, /sandbox_image = "localhost\/bazar-standin\/pause:3.10"/);
  assert.ok(toml.includes(`conf_dir = "${l.cniConfDir}"`));
  assert.ok(toml.includes('"io.containerd.internal.v1.opt"'), 'the opt plugin would create /opt/containerd');
  assert.match(containerdConfig(l, 'p', true), /"io.containerd.grpc.v1.cri",\n]/);
});

test('the kubelet runs on cgroup v1 with cgroupfs under the cluster cgroup, oomScoreAdj 0, cluster DNS', () => {
  const c = kubeletConfig(l, pki, '/x/resolv.conf');
  assert.equal(c.failCgroupV1, false);
  assert.equal(c.cgroupDriver, 'cgroupfs');
  assert.equal(c.cgroupRoot, '/bazar-cluster-unit');
  assert.equal(c.oomScoreAdj, 0);
  assert.deepEqual(c.clusterDNS, ['10.213.128.10']);
  assert.equal(c.address, l.network.nodeAddress);
  assert.equal(c.podLogsDir, l.podLogsDir);
});

test('kube-proxy: iptables, oomScoreAdj 0, conntrack left alone, the pod range as clusterCIDR', () => {
  const c = kubeProxyConfig(l) as { mode: string; oomScoreAdj: number; conntrack: Record<string, unknown> };
  assert.equal(c.mode, 'iptables');
  assert.equal(c.oomScoreAdj, 0);
  assert.equal(c.conntrack.maxPerCore, 0);
  assert.equal((kubeProxyConfig(l) as { clusterCIDR: string }).clusterCIDR, '10.213.64.0/18');
});

test('the CNI bridge hands out the node range and stores its leases in the state dir', () => {
  const c = JSON.parse(cniConfig(l)) as {
    plugins: Array<{ type: string; ipam?: { dataDir: string; ranges: unknown } }>;
  };
  assert.deepEqual(
    c.plugins.map((p) => p.type),
    ['bridge', 'portmap'],
  );
  assert.equal(c.plugins[0]?.ipam?.dataDir, l.cniIpamDir);
  assert.deepEqual(c.plugins[0]?.ipam?.ranges, [[{ subnet: '10.213.64.0/24', gateway: '10.213.64.1' }]]);
});

test('kube-dns sits at the cluster DNS address and `standard` is the default StorageClass', () => {
  const dns = corednsManifests(l, 'coredns:1').find((o) => o.kind === 'Service') as {
    spec: { clusterIP: string };
  };
  assert.equal(dns.spec.clusterIP, l.network.dnsServiceIp);
  const sc = localPathManifests(l, { coredns: 'c', localPathProvisioner: 'p', helper: 'b' }).find(
    (o) => o.kind === 'StorageClass',
  ) as { metadata: { name: string; annotations: Record<string, string> }; provisioner: string };
  assert.equal(sc.metadata.name, 'standard');
  assert.equal(sc.metadata.annotations['storageclass.kubernetes.io/is-default-class'], 'true');
  assert.equal(sc.provisioner, 'rancher.io/local-path');
});

test('host routes that overlap the cluster ranges are found; default, loopback and 10.213.0.0/24 are not', () => {
  const ranges = [l.network.nodeCidr, l.network.podCidr, l.network.serviceCidr];
  const routes = [
    'default via 192.0.2.1 dev eth0',
    'local 127.0.0.0/8 dev lo table local',
    '10.213.0.0/24 dev bazar-pods',
    '10.213.96.0/24 dev wg0',
    'local 10.213.1.7 dev x table local',
  ];
  assert.deepEqual(conflictingRoutes(routes, ranges), [
    '10.213.96.0/24 dev wg0',
    'local 10.213.1.7 dev x table local',
  ]);
});

test('kube-router (up({ networkPolicy: true })) runs its firewall only, as its own read-only user', () => {
  const spec = kubeRouterSpec(l, '/bin/kube-router');
  assert.equal(spec.where, 'cluster', 'inside the node namespaces, never on the host');
  for (const flag of ['--run-firewall=true', '--run-router=false', '--run-service-proxy=false']) {
    assert.ok(spec.argv.includes(flag), flag);
  }
  assert.ok(spec.argv.includes(`--hostname-override=${l.nodeName}`));
  assert.ok(spec.argv.includes(`--service-cluster-ip-range=${l.network.serviceCidr}`));
  const [role, binding] = kubeRouterRbac() as Array<{
    kind: string;
    rules?: Array<{ verbs: string[] }>;
    subjects?: Array<{ kind: string; name: string }>;
  }>;
  assert.equal(role?.kind, 'ClusterRole');
  assert.ok(
    role?.rules?.every((r) => r.verbs.every((v) => ['get', 'list', 'watch'].includes(v))),
    'read only',
  );
  assert.deepEqual(binding?.subjects, [
    { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: KUBE_ROUTER_USER },
  ]);
});

test('workers: each node its own address, pod /24, directories, cgroup and image store; the control plane is the cluster', () => {
  const nodes = nodeLayouts(l, 3);
  assert.equal(nodes[0], l);
  assert.deepEqual(
    nodes.map((n) => n.nodeName),
    ['unit-control-plane', 'unit-worker', 'unit-worker2'],
  );
  assert.deepEqual(
    nodes.map((n) => [n.network.nodeAddress, n.network.nodePodCidr, n.network.podGateway]),
    [
      ['10.213.1.1', '10.213.64.0/24', '10.213.64.1'],
      ['10.213.1.2', '10.213.65.0/24', '10.213.65.1'],
      ['10.213.1.3', '10.213.66.0/24', '10.213.66.1'],
    ],
  );
  const w = nodes[2]!;
  // What every node shares: the cluster's ranges, its PKI and its state directory (for `down`).
  assert.equal(w.network.podCidr, l.network.podCidr);
  assert.equal(w.network.serviceCidr, l.network.serviceCidr);
  assert.equal(w.pkiDir, l.pkiDir);
  for (const dir of [w.nsDir, w.configDir, w.logDir, w.pidDir, w.kubeletRoot, w.cniIpamDir, w.localPathDir]) {
    assert.ok(dir.startsWith(`${l.stateDir}/nodes/unit-worker2/`), dir);
  }
  assert.ok(w.containerdRoot.startsWith(`${l.imageCacheDir}/`), 'purge removes the workers` stores too');
  assert.equal(w.cgroupName, 'bazar-cluster-unit/unit-worker2');
  assert.equal(kubeletConfig(w, pki, '/r').cgroupRoot, '/bazar-cluster-unit/unit-worker2');
  assert.equal(cniConfig(w).includes('10.213.66.0/24'), true);
  assert.throws(() => nodeLayout(l, MAX_NODES), /node index/);
});

test('with workers: the control plane is tainted and runs the addons; each node has its own volume directory', () => {
  const nodes = nodeLayouts(l, 3);
  const c = kubeletConfig(l, pki, '/r', { taints: [CONTROL_PLANE_TAINT] });
  assert.deepEqual(c.registerWithTaints, [
    { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
  ]);
  assert.equal(kubeletConfig(l, pki, '/r').registerWithTaints, undefined, 'one node is not tainted');
  const spec = (objs: Array<Record<string, unknown>>, kind: string): Record<string, unknown> => {
    const d = objs.find((o) => o.kind === kind) as { spec: { template: { spec: Record<string, unknown> } } };
    return d.spec.template.spec;
  };
  const dns = spec(corednsManifests(l, 'img', 2), 'Deployment');
  assert.deepEqual(dns.nodeSelector, { 'kubernetes.io/hostname': 'unit-control-plane' });
  assert.ok(JSON.stringify(dns.tolerations).includes('node-role.kubernetes.io/control-plane'));
  assert.equal(spec(corednsManifests(l, 'img'), 'Deployment').nodeSelector, undefined);
  const images = { coredns: 'c', localPathProvisioner: 'p', helper: 'h' };
  const storage = localPathManifests(l, images, nodes);
  assert.deepEqual(spec(storage, 'Deployment').nodeSelector, {
    'kubernetes.io/hostname': 'unit-control-plane',
  });
  const config = storage.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> };
  const map = (
    JSON.parse(config.data['config.json']!) as { nodePathMap: Array<{ node: string; paths: string[] }> }
  ).nodePathMap;
  for (const n of nodes) {
    assert.deepEqual(map.find((m) => m.node === n.nodeName)?.paths, [n.localPathDir]);
  }
});
