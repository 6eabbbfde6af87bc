/**
 * The add-ons every kind or minikube cluster has: CoreDNS as `kube-dns` at the cluster DNS address, and
 * rancher's local-path-provisioner behind the default StorageClass `standard` (kind's name for it, and
 * minikube's too, where `standard` is backed by its own hostpath provisioner).
 *
 * Both follow the upstream manifests (CoreDNS's deployment/kubernetes, local-path-provisioner v0.0.30's
 * deploy/local-path-storage.yaml) with our images and three changes: CoreDNS forwards nothing
 * (the cluster has no way out, so only cluster names resolve), the provisioner's volumes live in the
 * cluster's state directory, and its helper pods run the busybox stand-in.
 */
import { CONTROL_PLANE_TAINT } from './kubelet.js';
import type { ClusterLayout } from './layout.js';

export interface AddonImages {
  coredns: string;
  localPathProvisioner: string;
  helper: string;
}

type Obj = Record<string, unknown>;

export const COREDNS = { namespace: 'kube-system', deployment: 'coredns' } as const;
export const LOCAL_PATH = { namespace: 'local-path-storage', deployment: 'local-path-provisioner' } as const;
export const DEFAULT_STORAGE_CLASS = 'standard';

function corefile(l: ClusterLayout): string {
  return `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes ${l.network.clusterDomain} in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
}
`;
}

function corednsRbac(): Obj[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: 'kube-system' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns' },
      rules: [
        {
          apiGroups: [''],
          resources: ['endpoints', 'services', 'pods', 'namespaces'],
          verbs: ['list', 'watch'],
        },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
    },
  ];
}

function corednsDeployment(image: string, placement: Obj): Obj {
  const labels = { 'k8s-app': 'kube-dns' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'coredns', namespace: 'kube-system', labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: 'coredns',
          priorityClassName: 'system-cluster-critical',
          dnsPolicy: 'Default',
          ...(placement.nodeSelector ? { nodeSelector: placement.nodeSelector } : {}),
          tolerations: [
            { key: 'CriticalAddonsOnly', operator: 'Exists' },
            ...((placement.tolerations as Obj[] | undefined) ?? []),
          ],
          containers: [
            {
              name: 'coredns',
              image,
              imagePullPolicy: 'IfNotPresent',
              args: ['-conf', '/etc/coredns/Corefile'],
              resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '170Mi' } },
              volumeMounts: [{ name: 'config-volume', mountPath: '/etc/coredns', readOnly: true }],
              ports: [
                { containerPort: 53, name: 'dns', protocol: 'UDP' },
                { containerPort: 53, name: 'dns-tcp', protocol: 'TCP' },
                { containerPort: 9153, name: 'metrics', protocol: 'TCP' },
              ],
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] },
                readOnlyRootFilesystem: true,
              },
              livenessProbe: {
                httpGet: { path: '/health', port: 8080 },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                failureThreshold: 5,
              },
              readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 1 },
            },
          ],
          volumes: [
            {
              name: 'config-volume',
              configMap: { name: 'coredns', items: [{ key: 'Corefile', path: 'Corefile' }] },
            },
          ],
        },
      },
    },
  };
}

export function corednsManifests(l: ClusterLayout, image: string, workers = 0): Obj[] {
  return [
    ...corednsRbac(),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'coredns', namespace: 'kube-system' },
      data: { Corefile: corefile(l) },
    },
    corednsDeployment(image, controlPlanePlacement(l, workers)),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'kube-dns',
        namespace: 'kube-system',
        labels: { 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' },
      },
      spec: {
        selector: { 'k8s-app': 'kube-dns' },
        clusterIP: l.network.dnsServiceIp,
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, protocol: 'TCP' },
          { name: 'metrics', port: 9153, protocol: 'TCP' },
        ],
      },
    },
  ];
}

function localPathRbac(): Obj[] {
  const ns = LOCAL_PATH.namespace;
  const sa = 'local-path-provisioner-service-account';
  const subjects = [{ kind: 'ServiceAccount', name: sa, namespace: ns }];
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'local-path-provisioner-role', namespace: ns },
      rules: [
        {
          apiGroups: [''],
          resources: ['pods'],
          verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'local-path-provisioner-role' },
      rules: [
        {
          apiGroups: [''],
          resources: ['nodes', 'persistentvolumeclaims', 'configmaps', 'pods', 'pods/log'],
          verbs: ['get', 'list', 'watch'],
        },
        {
          apiGroups: [''],
          resources: ['persistentvolumes'],
          verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
        },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'local-path-provisioner-bind', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'local-path-provisioner-role' },
      subjects,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'local-path-provisioner-bind' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'local-path-provisioner-role',
      },
      subjects,
    },
  ];
}

function helperPodYaml(image: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  priorityClassName: system-node-critical
  tolerations:
    - key: node.kubernetes.io/disk-pressure
      operator: Exists
      effect: NoSchedule
  containers:
  - name: helper-pod
    image: ${image}
    imagePullPolicy: IfNotPresent
`;
}

/**
 * With workers, the addons run on the control plane (which is tainted for everything else), so that a
 * worker lost or cut off takes neither the cluster's DNS nor its volume provisioning with it.
 */
export function controlPlanePlacement(l: ClusterLayout, workers: number): Obj {
  if (workers === 0) return {};
  return {
    nodeSelector: { 'kubernetes.io/hostname': l.nodeName },
    tolerations: [{ key: CONTROL_PLANE_TAINT.key, operator: 'Exists', effect: CONTROL_PLANE_TAINT.effect }],
  };
}

/** Each node's volumes live in a directory of that node's own (a local disk): the PV is bound to it. */
function localPathConfig(l: ClusterLayout, helperImage: string, nodes: ClusterLayout[]): Obj {
  const config = {
    nodePathMap: [
      { node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: [l.localPathDir] },
      ...(nodes.length > 1 ? nodes.map((n) => ({ node: n.nodeName, paths: [n.localPathDir] })) : []),
    ],
  };
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'local-path-config', namespace: LOCAL_PATH.namespace },
    data: {
      'config.json': JSON.stringify(config, null, 2),
      // 0777, as upstream: kubelet applies no fsGroup to hostPath volumes, and non-root pods (Postgres)
      // must be able to create their data directories in them.
      setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
      teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
      'helperPod.yaml': helperPodYaml(helperImage),
    },
  };
}

function localPathDeployment(image: string, placement: Obj): Obj {
  const labels = { app: 'local-path-provisioner' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: LOCAL_PATH.deployment, namespace: LOCAL_PATH.namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: 'local-path-provisioner-service-account',
          priorityClassName: 'system-node-critical',
          ...placement,
          containers: [
            {
              name: 'local-path-provisioner',
              image,
              imagePullPolicy: 'IfNotPresent',
              command: ['local-path-provisioner', '--debug', 'start', '--config', '/etc/config/config.json'],
              volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config/' }],
              env: [
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'CONFIG_MOUNT_PATH', value: '/etc/config/' },
              ],
            },
          ],
          volumes: [{ name: 'config-volume', configMap: { name: 'local-path-config' } }],
        },
      },
    },
  };
}

export function localPathManifests(
  l: ClusterLayout,
  images: AddonImages,
  nodes: ClusterLayout[] = [l],
): Obj[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: LOCAL_PATH.namespace } },
    ...localPathRbac(),
    localPathConfig(l, images.helper, nodes),
    localPathDeployment(images.localPathProvisioner, controlPlanePlacement(l, nodes.length - 1)),
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: {
        name: DEFAULT_STORAGE_CLASS,
        annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
      },
      provisioner: 'rancher.io/local-path',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
    },
  ];
}

/** One kubectl-applicable document for a set of objects. */
export function asList(items: Obj[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}
