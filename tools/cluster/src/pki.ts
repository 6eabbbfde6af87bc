/**
 * The cluster's PKI, made with Debian's openssl: one CA, a serving certificate for the API server and
 * the kubelet, a client certificate per component (the API server authorises each by its CN/O, with the
 * default RBAC bindings kubeadm relies on too), and the ServiceAccount token signing key.
 *
 * Keys are ECDSA P-256: generated in milliseconds (RSA 2048 costs ~100 ms each on these cores) and
 * accepted everywhere Kubernetes takes a key, ServiceAccount tokens (ES256) included.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run } from './exec.js';
import { KUBE_ROUTER_USER } from './kube-router.js';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface ClusterPki {
  ca: CertFiles;
  apiServer: CertFiles;
  apiServerKubeletClient: CertFiles;
  admin: CertFiles;
  controllerManager: CertFiles;
  scheduler: CertFiles;
  kubeletClient: CertFiles;
  kubeletServing: CertFiles;
  kubeProxy: CertFiles;
  /** kube-router's firewall (NetworkPolicy enforcement, when the cluster runs it). */
  kubeRouter: CertFiles;
  frontProxyClient: CertFiles;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

interface CertRequest {
  /** Subject: CN is the user name, each O a group. */
  cn: string;
  orgs?: string[];
  dnsNames?: string[];
  ips?: string[];
  usage: 'server' | 'client' | 'both';
}

const DAYS = '365';

async function newKey(file: string): Promise<void> {
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file]);
}

async function createCa(dir: string): Promise<CertFiles> {
  const ca = { cert: path.join(dir, 'ca.crt'), key: path.join(dir, 'ca.key') };
  await newKey(ca.key);
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    ca.key,
    '-sha256',
    '-days',
    '3650',
    '-subj',
    '/CN=bazar-cluster-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    '-out',
    ca.cert,
  ]);
  return ca;
}

function subject(req: CertRequest): string {
  return [...(req.orgs ?? []).map((o) => `/O=${o}`), `/CN=${req.cn}`].join('');
}

function extensions(req: CertRequest): string {
  const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[req.usage];
  const sans = [...(req.dnsNames ?? []).map((d) => `DNS:${d}`), ...(req.ips ?? []).map((ip) => `IP:${ip}`)];
  return [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${eku}`,
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
    '',
  ].join('\n');
}

async function issue(dir: string, name: string, ca: CertFiles, req: CertRequest): Promise<CertFiles> {
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  await newKey(files.key);
  await run('openssl', ['req', '-new', '-key', files.key, '-subj', subject(req), '-out', csr]);
  writeFileSync(ext, extensions(req));
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${randomBytes(12).toString('hex')}`,
    '-days',
    DAYS,
    '-sha256',
    '-extfile',
    ext,
    '-out',
    files.cert,
  ]);
  return files;
}

export interface PkiSubjects {
  nodeName: string;
  nodeAddress: string;
  kubernetesServiceIp: string;
  clusterDomain: string;
}

/** Creates every key and certificate the cluster needs under `dir` (a fresh directory). */
export async function createPki(dir: string, s: PkiSubjects): Promise<ClusterPki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(path.join(dir, 'ca.crt'))) throw new Error(`${dir} already holds a PKI`);
  const ca = await createCa(dir);
  const client = (cn: string, orgs: string[] = []): CertRequest => ({ cn, orgs, usage: 'client' });
  // Independent openssl runs: issued together (about 1 s one after another on two cores).
  const [
    apiServer,
    kubeletServing,
    apiServerKubeletClient,
    admin,
    controllerManager,
    scheduler,
    kubeletClient,
    kubeProxy,
    kubeRouter,
    frontProxyClient,
  ] = await Promise.all([
    issue(dir, 'apiserver', ca, {
      cn: 'kube-apiserver',
      usage: 'server',
      dnsNames: [
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        `kubernetes.default.svc.${s.clusterDomain}`,
        'localhost',
        s.nodeName,
      ],
      // 127.0.0.1: the loopback forwarder on the host connects clients through it.
      ips: [s.nodeAddress, s.kubernetesServiceIp, '127.0.0.1'],
    }),
    issue(dir, 'kubelet-serving', ca, {
      cn: `system:node:${s.nodeName}`,
      orgs: ['system:nodes'],
      usage: 'server',
      dnsNames: [s.nodeName, 'localhost'],
      ips: [s.nodeAddress, '127.0.0.1'],
    }),
    // The API server's identity towards the kubelet (logs, exec, port-forward): authorised by the
    // kubelet's webhook through a SubjectAccessReview, which system:masters passes.
    issue(dir, 'apiserver-kubelet-client', ca, client('kube-apiserver-kubelet-client', ['system:masters'])),
    issue(dir, 'admin', ca, client('kubernetes-admin', ['system:masters'])),
    issue(dir, 'controller-manager', ca, client('system:kube-controller-manager')),
    issue(dir, 'scheduler', ca, client('system:kube-scheduler')),
    // The Node authorizer and NodeRestriction admit exactly system:node:<name> in system:nodes.
    issue(dir, 'kubelet-client', ca, client(`system:node:${s.nodeName}`, ['system:nodes'])),
    issue(dir, 'kube-proxy', ca, client('system:kube-proxy')),
    // No group: it may do what the ClusterRole bound to this user allows (kube-router.ts), no more.
    issue(dir, 'kube-router', ca, client(KUBE_ROUTER_USER)),
    // The aggregation layer's identity (requestheader authentication); also silences the
    // components' "missing requestheader client CA" errors.
    issue(dir, 'front-proxy-client', ca, client('front-proxy-client')),
  ]);
  const pki: ClusterPki = {
    ca,
    apiServer,
    kubeletServing,
    apiServerKubeletClient,
    admin,
    controllerManager,
    scheduler,
    kubeletClient,
    kubeProxy,
    kubeRouter,
    frontProxyClient,
    serviceAccountKey: path.join(dir, 'sa.key'),
    serviceAccountPub: path.join(dir, 'sa.pub'),
  };
  await newKey(pki.serviceAccountKey);
  await run('openssl', ['ec', '-in', pki.serviceAccountKey, '-pubout', '-out', pki.serviceAccountPub]);
  return pki;
}

/** A worker node's own kubelet certificates: its client identity and its serving certificate. */
export interface NodeCerts {
  kubeletClient: CertFiles;
  kubeletServing: CertFiles;
}

/**
 * Issues a worker's kubelet certificates from the cluster CA, as kubeadm join's TLS bootstrap ends
 * with: the Node authorizer admits each kubelet only to its own node's objects.
 */
export async function issueNodeCerts(
  dir: string,
  node: { nodeName: string; nodeAddress: string },
): Promise<NodeCerts> {
  const { ca } = pkiFiles(dir);
  const [kubeletClient, kubeletServing] = await Promise.all([
    issue(dir, `kubelet-client-${node.nodeName}`, ca, {
      cn: `system:node:${node.nodeName}`,
      orgs: ['system:nodes'],
      usage: 'client',
    }),
    issue(dir, `kubelet-serving-${node.nodeName}`, ca, {
      cn: `system:node:${node.nodeName}`,
      orgs: ['system:nodes'],
      usage: 'server',
      dnsNames: [node.nodeName, 'localhost'],
      ips: [node.nodeAddress, '127.0.0.1'],
    }),
  ]);
  return { kubeletClient, kubeletServing };
}

/** The files issueNodeCerts made for `nodeName`. */
export function nodeCertFiles(dir: string, nodeName: string): NodeCerts {
  const pair = (name: string): CertFiles => ({
    cert: path.join(dir, `${name}-${nodeName}.crt`),
    key: path.join(dir, `${name}-${nodeName}.key`),
  });
  return { kubeletClient: pair('kubelet-client'), kubeletServing: pair('kubelet-serving') };
}

/** The file names createPki uses, for a cluster whose PKI already exists. */
export function pkiFiles(dir: string): ClusterPki {
  const pair = (name: string): CertFiles => ({
    cert: path.join(dir, `${name}.crt`),
    key: path.join(dir, `${name}.key`),
  });
  return {
    ca: pair('ca'),
    apiServer: pair('apiserver'),
    apiServerKubeletClient: pair('apiserver-kubelet-client'),
    admin: pair('admin'),
    controllerManager: pair('controller-manager'),
    scheduler: pair('scheduler'),
    kubeletClient: pair('kubelet-client'),
    kubeletServing: pair('kubelet-serving'),
    kubeProxy: pair('kube-proxy'),
    kubeRouter: pair('kube-router'),
    frontProxyClient: pair('front-proxy-client'),
    serviceAccountKey: path.join(dir, 'sa.key'),
    serviceAccountPub: path.join(dir, 'sa.pub'),
  };
}
