/**
 * `status`: which daemons of a cluster run (by their pid files, checked against /proc so a reused pid
 * does not count), in which phase `up` left it, and the leftovers check when it is not up.
 */
import { daemonAlive as daemonPid } from './daemons.js';
import { clusterLayout, DEFAULT_CLUSTER_NAME, type ClusterLayout } from './layout.js';
import { readState } from './state.js';
import { leftovers } from './teardown.js';

/** Whether `up` finished writing the state and every daemon it started still runs. */
export function daemonsAlive(l: ClusterLayout): boolean {
  const pids = readState(l) ? statusOfDaemons(l) : {};
  return Object.values(pids).every((p) => p !== undefined) && Object.keys(pids).length > 0;
}

export const DAEMONS: ReadonlyArray<[string, string]> = [
  ['api-forwarder', 'socat'],
  ['etcd', 'etcd'],
  ['kube-apiserver', 'kube-apiserver'],
  ['kube-controller-manager', 'kube-controller-manager'],
  ['kube-scheduler', 'kube-scheduler'],
  ['containerd', 'containerd'],
  ['kubelet', 'kubelet'],
  ['kube-proxy', 'kube-proxy'],
];

/** The NetworkPolicy enforcer, in a cluster started with up({ networkPolicy: true }). */
export const NETWORK_POLICY_DAEMON: [string, string] = ['kube-router', 'kube-router'];

/** The daemons this cluster runs (per its state file) and their pids, undefined when not running. */
export function statusOfDaemons(l: ClusterLayout): Record<string, number | undefined> {
  const daemons = readState(l)?.networkPolicy ? [...DAEMONS, NETWORK_POLICY_DAEMON] : DAEMONS;
  return Object.fromEntries(daemons.map(([name, program]) => [name, daemonPid(l.pidDir, name, program)]));
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface ClusterStatus {
  name: string;
  state: 'up' | 'starting' | 'down' | 'broken';
  stateDir: string;
  kubeconfig?: string;
  apiServerUrl?: string;
  kubeVersion?: string;
  daemons: Record<string, number | undefined>;
  leftovers: string[];
}

export async function status(
  name = DEFAULT_CLUSTER_NAME,
  opts: { stateRoot?: string } = {},
): Promise<ClusterStatus> {
  const l = clusterLayout(name, opts.stateRoot ? { stateRoot: opts.stateRoot } : {});
  const state = readState(l);
  const daemons = statusOfDaemons(l);
  const alive = Object.values(daemons).filter((p) => p !== undefined).length;
  const found = await leftovers(l, { keepData: true });
  let verdict: ClusterStatus['state'];
  if (state?.phase === 'up' && alive === Object.keys(daemons).length) verdict = 'up';
  else if (state?.phase === 'starting' && alive > 0 && processExists(state.upPid)) verdict = 'starting';
  else if (!state && found.length === 0) verdict = 'down';
  else verdict = 'broken';
  return {
    name,
    state: verdict,
    stateDir: l.stateDir,
    daemons,
    leftovers: verdict === 'up' || verdict === 'starting' ? [] : found,
    ...(state
      ? { kubeconfig: l.kubeconfig, apiServerUrl: state.apiServerUrl, kubeVersion: state.kubeVersion }
      : {}),
  };
}
