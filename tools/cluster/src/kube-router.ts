/**
 * NetworkPolicy enforcement for the local cluster (`up({ networkPolicy: true })`, `npm run cluster --
 * up --network-policy`): kube-router's firewall controller as a node daemon inside the cluster's network
 * and mount namespaces, like kube-proxy. The bridge CNI enforces nothing; on this kernel (no nft queue
 * support, so no kube-network-policies) kube-router is the one enforcer that runs.
 *
 * A TEST ENFORCER ONLY: kube-router v2.1.0 (the version the Go module proxy serves here, built by
 * scripts/k8s-tools.sh) is flagged for reported security flaws. It runs only inside the cluster's own
 * network namespace (its iptables rules and ipsets live there and vanish with it at `down`), only its
 * firewall (`--run-firewall --run-router=false --run-service-proxy=false`: no BGP, no routes, no IPVS),
 * and with a client certificate of its own that may only read what the firewall needs.
 */
import path from 'node:path';
import type { DaemonSpec } from './daemons.js';
import { PORTS, type ClusterLayout } from './layout.js';

/** The user kube-router's client certificate names (CN); bound to KUBE_ROUTER_ROLE only. */
export const KUBE_ROUTER_USER = 'system:bazar-kube-router';
const KUBE_ROUTER_ROLE = 'bazar:kube-router-firewall';

/**
 * What its firewall controller watches (pods, namespaces, NetworkPolicies, its own node) plus what
 * kube-router's shared informer factory starts for every run mode (services, endpoints,
 * EndpointSlices): read only, nothing else.
 */
export function kubeRouterRbac(): Array<Record<string, unknown>> {
  const read = ['get', 'list', 'watch'];
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: KUBE_ROUTER_ROLE },
      rules: [
        { apiGroups: [''], resources: ['pods', 'namespaces', 'nodes', 'services', 'endpoints'], verbs: read },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: read },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: KUBE_ROUTER_ROLE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: KUBE_ROUTER_ROLE },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: KUBE_ROUTER_USER }],
    },
  ];
}

export function kubeRouterSpec(l: ClusterLayout, binary: string): DaemonSpec {
  return {
    name: 'kube-router',
    where: 'cluster',
    argv: [
      binary,
      '--run-firewall=true',
      '--run-router=false',
      '--run-service-proxy=false',
      `--kubeconfig=${path.join(l.configDir, 'kube-router.kubeconfig')}`,
      // The node object it looks up (its InternalIP tells it which pods are local).
      `--hostname-override=${l.nodeName}`,
      `--service-cluster-ip-range=${l.network.serviceCidr}`,
      `--health-port=${PORTS.kubeRouterHealth}`,
      '--metrics-port=0',
      '--v=1',
    ],
  };
}
