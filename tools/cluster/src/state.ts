/**
 * The state file (<state>/cluster.json): written as soon as `up` has made the state directory and
 * updated as it goes, so that `down` and `status` know what exists even after a crash half-way.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { ClusterLayout } from './layout.js';

export interface ClusterState {
  name: string;
  phase: 'starting' | 'up';
  startedAt: string;
  upPid: number;
  kubeVersion?: string;
  apiPort?: number;
  apiServerUrl?: string;
  netInode?: number;
  mntInode?: number;
  createdVarLibCni?: boolean;
  /** How many nodes: the control plane and nodes - 1 workers (absent: 1). */
  nodes?: number;
  /** kube-router enforces NetworkPolicies (up({ networkPolicy: true })). */
  networkPolicy?: boolean;
  images?: Record<string, string>;
  timings?: Record<string, number>;
}

export function readState(l: ClusterLayout): ClusterState | undefined {
  if (!existsSync(l.stateFile)) return undefined;
  try {
    return JSON.parse(readFileSync(l.stateFile, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function writeState(l: ClusterLayout, state: ClusterState): void {
  writeFileSync(`${l.stateFile}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${l.stateFile}.tmp`, l.stateFile);
}
