/**
 * For this tool's own cluster tests: why they cannot run here (root, the toolchain, host packages),
 * or false (under CI, or BAZAR_REQUIRE_CLUSTER_TIER=1, a missing prerequisite is a failure, not a
 * skip); and kubectl's JSON of an object.
 */
import type { Cluster } from './cluster.js';
import { missingHostRequirements, missingKubeBinaries } from './toolchain.js';

function prerequisites(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts, cgroups)';
  const kube = missingKubeBinaries();
  if (kube.length > 0) return `missing ${kube.join(', ')}: run scripts/k8s-tools.sh`;
  const host = missingHostRequirements();
  if (host.length > 0)
    return `missing ${host.map((h) => h.file).join(', ')} (npm run cluster -- up installs them)`;
  return undefined;
}

export function clusterTestSkipReason(): string | false {
  const why = prerequisites();
  if (!why) return false;
  const message = `NOT RUN: the local cluster tier (tools/cluster): ${why}`;
  if (process.env.CI || process.env.BAZAR_REQUIRE_CLUSTER_TIER === '1') throw new Error(message);
  process.stderr.write(`\n*** ${message}\n\n`);
  return message;
}

/** `kubectl <args> -o json` on the host, parsed. */
export async function jsonOf<T>(cluster: Cluster, args: string[]): Promise<T> {
  return JSON.parse((await cluster.kubectl([...args, '-o', 'json'])).stdout) as T;
}
