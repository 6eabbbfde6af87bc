import { EventEmitter } from 'node:events';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { PolicyStore, RuntimePolicy } from '../policy.js';

/** The StorePolicy custom resource (charts/bazar/crds/storepolicies.yaml). */
export const STORE_POLICY = {
  group: 'bazar.dev',
  version: 'v1alpha1',
  plural: 'storepolicies',
  kind: 'StorePolicy',
} as const;

export interface StorePolicySpec {
  cache?: { maxEntries?: number; maxBytes?: number; ttlMs?: number };
  loadBalancing?: string;
  consistencyMode?: string;
  invalidationTimeoutMs?: number;
}

export interface ReadyCondition {
  type: 'Ready';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** One front's own report, under status.fronts.<pod name>. */
export interface FrontStatus {
  observedGeneration?: number;
  ready: boolean;
  reason: string;
  message: string;
  consistencyMode: string;
  endpoints: Record<string, number>;
  cache: { entries: number; bytes?: number; hits: number; misses: number; hitRatio: string };
  lastUpdateTime: string;
}

export interface StorePolicyStatus {
  observedGeneration?: number;
  consistencyMode?: string;
  endpoints?: Record<string, number>;
  cache?: {
    entries: number;
    maxEntries: number;
    /** Bytes the fronts' caches count for, summed (absent in a status written by an older front). */
    bytes?: number;
    maxBytes?: number;
    ttlMs: number;
    hits: number;
    misses: number;
    hitRatio: string;
  };
  fronts?: Record<string, FrontStatus>;
  conditions?: ReadyCondition[];
  /** The PostgreSQL primary the writers reach (written by the writers, see database-status.ts). */
  database?: DatabaseStatus;
}

export interface DatabaseStatus {
  /** The primary's member name (the Patroni pod), or its address. */
  primary: string;
  /** Its PostgreSQL timeline: one more after every promotion. */
  timeline: number;
  systemIdentifier: string;
  /** The writer pod that reported it last. */
  observedBy: string;
  /** When that writer first saw this primary on this timeline. */
  lastTransitionTime: string;
}

export interface StorePolicyObject extends KubernetesObject {
  spec?: StorePolicySpec;
  status?: StorePolicyStatus;
}

/**
 * Reads a spec into a policy change. The API server's schema already enforces types and bounds; this
 * is the second line (a CRD installed without its schema, or an older one), so nothing unchecked
 * reaches the PolicyStore. Absent fields are left as they are.
 */
export function specToPolicy(spec: unknown): { change: Partial<RuntimePolicy>; problems: string[] } {
  const problems: string[] = [];
  const change: Record<string, unknown> = {};
  if (spec === undefined || spec === null) return { change: {}, problems };
  if (typeof spec !== 'object') return { change: {}, problems: ['spec must be an object'] };
  const s = spec as Record<string, unknown>;
  const cache = s.cache;
  if (cache !== undefined && (typeof cache !== 'object' || cache === null))
    problems.push('spec.cache must be an object');
  const c = (typeof cache === 'object' && cache !== null ? cache : {}) as Record<string, unknown>;
  const fields: Array<[unknown, keyof RuntimePolicy, string, 'number' | 'string']> = [
    [c.maxEntries, 'cacheMaxEntries', 'spec.cache.maxEntries', 'number'],
    [c.maxBytes, 'cacheMaxBytes', 'spec.cache.maxBytes', 'number'],
    [c.ttlMs, 'cacheTtlMs', 'spec.cache.ttlMs', 'number'],
    [s.loadBalancing, 'loadBalancing', 'spec.loadBalancing', 'string'],
    [s.consistencyMode, 'consistencyMode', 'spec.consistencyMode', 'string'],
    [s.invalidationTimeoutMs, 'invalidationTimeoutMs', 'spec.invalidationTimeoutMs', 'number'],
  ];
  for (const [value, key, path, type] of fields) {
    if (value === undefined) continue;
    if (typeof value !== type) problems.push(`${path} must be a ${type}`);
    else change[key] = value;
  }
  return { change: change as Partial<RuntimePolicy>, problems };
}

/** What the policy watch did with the resource; the status writer reports it. */
export interface PolicyApplyState {
  /** The resource exists (as far as the watch knows). */
  present: boolean;
  uid?: string;
  /** The generation whose spec was last looked at (applied, or refused with `problems`). */
  observedGeneration?: number;
  /** Why the last spec was refused (the last good policy stays in force); empty when applied. */
  problems: string[];
}

/**
 * The watch and the status writer share one PolicyStore but are started separately; this ties their
 * state to that store without widening either's interface.
 */
export class PolicyApplyTracker extends EventEmitter<{ change: [PolicyApplyState] }> {
  #state: PolicyApplyState = { present: false, problems: [] };

  get state(): PolicyApplyState {
    return this.#state;
  }

  set(next: PolicyApplyState): void {
    this.#state = Object.freeze({ ...next, problems: [...next.problems] });
    this.emit('change', this.#state);
  }
}

const trackers = new WeakMap<PolicyStore, PolicyApplyTracker>();

export function applyTrackerFor(policy: PolicyStore): PolicyApplyTracker {
  let tracker = trackers.get(policy);
  if (!tracker) {
    tracker = new PolicyApplyTracker();
    trackers.set(policy, tracker);
  }
  return tracker;
}
