/**
 * A real control plane for the tier: etcd + kube-apiserver from scripts/local-apiserver.mjs, plus
 * what a cluster admin would set up for Bazar: the CRD, a namespace, the services' ServiceAccount,
 * exactly the chart's Role, a RoleBinding, and a TokenRequest token for the services.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  loadYaml,
  RbacAuthorizationV1Api,
  type V1CustomResourceDefinition,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { repoRoot } from './toolchain.js';

/** What scripts/local-apiserver.mjs returns (it is plain JavaScript). */
export interface LocalApiServer {
  url: string;
  adminToken: string;
  kubeconfigPath: string;
  caCertPath: string;
  dataDir: string;
  logs: { apiserver: string; etcd: string };
  stop(): Promise<void>;
  /** Restarts kube-apiserver only: SIGTERM (open watches end cleanly), or SIGKILL with `hard`. */
  restart(opts?: { hard?: boolean }): Promise<void>;
}

interface LocalApiServerModule {
  startLocalApiServer(opts: { binDir?: string; dataDir?: string }): Promise<LocalApiServer>;
}

/**
 * The Role the chart grants the services (charts/bazar/templates/rbac.yaml), verbatim. The tier runs
 * the services with exactly these rules; a separate test checks the chart still renders the same.
 */
export const SERVICE_ROLE_RULES: V1PolicyRule[] = [
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['bazar.dev'], resources: ['storepolicies'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['bazar.dev'], resources: ['storepolicies/status'], verbs: ['get', 'update', 'patch'] },
];

export const CRD_FILE = path.join(repoRoot, 'charts', 'bazar', 'crds', 'storepolicies.yaml');

export class ControlPlane {
  readonly admin: KubeConfig;
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  readonly slices: DiscoveryV1Api;
  readonly custom: CustomObjectsApi;
  readonly apiext: ApiextensionsV1Api;

  static async start(opts: { binDir: string; dataDir: string }): Promise<ControlPlane> {
    const url = pathToFileURL(path.join(repoRoot, 'scripts', 'local-apiserver.mjs')).href;
    const mod = (await import(url)) as LocalApiServerModule;
    return new ControlPlane(await mod.startLocalApiServer(opts));
  }

  constructor(readonly server: LocalApiServer) {
    this.admin = new KubeConfig();
    this.admin.loadFromFile(server.kubeconfigPath);
    this.core = this.admin.makeApiClient(CoreV1Api);
    this.rbac = this.admin.makeApiClient(RbacAuthorizationV1Api);
    this.slices = this.admin.makeApiClient(DiscoveryV1Api);
    this.custom = this.admin.makeApiClient(CustomObjectsApi);
    this.apiext = this.admin.makeApiClient(ApiextensionsV1Api);
  }

  /** Applies the chart's CRD (admin only) and waits until it is Established and served. */
  async applyCrd(file = CRD_FILE): Promise<V1CustomResourceDefinition> {
    const crd = loadYaml<V1CustomResourceDefinition>(readFileSync(file, 'utf8'));
    await this.apiext.createCustomResourceDefinition({ body: crd });
    const name = crd.metadata?.name ?? '';
    const established = await poll(
      async () => {
        const current = await this.apiext.readCustomResourceDefinition({ name });
        return current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
          ? current
          : undefined;
      },
      30_000,
      `CRD ${name} to be established`,
    );
    // Established can precede the first successful list by a moment.
    const version = crd.spec.versions[0]?.name ?? 'v1alpha1';
    await poll(
      async () =>
        (await this.custom
          .listNamespacedCustomObject({
            group: crd.spec.group,
            version,
            namespace: 'default',
            plural: crd.spec.names.plural,
          })
          .then(() => true)
          .catch(() => false)) || undefined,
      30_000,
      `${crd.spec.names.plural} to be served`,
    );
    return established;
  }

  async createNamespace(name: string): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name } } });
  }

  /**
   * A ServiceAccount bound to a Role with exactly `rules`, and a short-lived token for it from the
   * TokenRequest API (what the kubelet mounts into a pod).
   */
  async serviceAccountToken(namespace: string, name: string, rules: V1PolicyRule[]): Promise<string> {
    await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    await this.rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
    await this.rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      },
    });
    const request = await this.core.createNamespacedServiceAccountToken({
      namespace,
      name,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const token = request.status?.token;
    if (!token) throw new Error('TokenRequest returned no token');
    return token;
  }

  /**
   * A kubeconfig for a bearer token, verifying the API server's self-signed serving certificate; `server`
   * (default: the API server itself) may be a proxy on the same address.
   */
  writeKubeconfig(file: string, token: string, namespace: string, server = this.server.url): string {
    const yaml = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: local',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority: ${this.server.caCertPath}`,
      'users:',
      '- name: bazar',
      '  user:',
      `    token: ${token}`,
      'contexts:',
      '- name: bazar',
      '  context:',
      '    cluster: local',
      '    user: bazar',
      `    namespace: ${namespace}`,
      'current-context: bazar',
      '',
    ].join('\n');
    writeFileSync(file, yaml, { mode: 0o600 });
    return file;
  }

  /** The kube-apiserver process (found by its data directory), to freeze it as a node-level fault would. */
  apiServerPid(): number {
    const certDir = `--cert-dir=${path.join(this.server.dataDir, 'certs')}`;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
        if (argv[0]?.endsWith('kube-apiserver') && argv.includes(certDir)) return Number(entry);
      } catch {
        // Gone meanwhile.
      }
    }
    throw new Error(`no kube-apiserver process with ${certDir}`);
  }

  static kubeConfigFrom(file: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    return kc;
  }
}

export async function poll<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message.slice(0, 300)})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The HTTP status of a failed client-node call. */
export function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Runs a call expected to fail and returns its HTTP status (throws if it succeeded). */
export async function statusOfFailure(call: () => Promise<unknown>): Promise<number | undefined> {
  try {
    await call();
  } catch (err) {
    return httpStatus(err);
  }
  throw new Error('expected the call to be refused, but it succeeded');
}
