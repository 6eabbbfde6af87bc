/**
 * Kubeconfigs with client certificates. Paths, not embedded data: every file lives in the cluster's
 * state directory, which the host and the mount namespace see at the same path.
 */
import { writeFileSync } from 'node:fs';
import type { CertFiles } from './pki.js';

export interface KubeconfigSpec {
  file: string;
  server: string;
  caFile: string;
  client: CertFiles;
  user: string;
  clusterName: string;
  namespace?: string;
}

export function kubeconfigYaml(spec: KubeconfigSpec): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${spec.clusterName}`,
    '  cluster:',
    `    server: ${spec.server}`,
    `    certificate-authority: ${spec.caFile}`,
    'users:',
    `- name: ${spec.user}`,
    '  user:',
    `    client-certificate: ${spec.client.cert}`,
    `    client-key: ${spec.client.key}`,
    'contexts:',
    `- name: ${spec.clusterName}`,
    '  context:',
    `    cluster: ${spec.clusterName}`,
    `    user: ${spec.user}`,
    `    namespace: ${spec.namespace ?? 'default'}`,
    `current-context: ${spec.clusterName}`,
    '',
  ].join('\n');
}

export function writeKubeconfig(spec: KubeconfigSpec): string {
  writeFileSync(spec.file, kubeconfigYaml(spec), { mode: 0o600 });
  return spec.file;
}
