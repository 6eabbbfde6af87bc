import { EventEmitter } from 'node:events';

export const CONSISTENCY_MODES = ['strict', 'session', 'eventual'] as const;
export type ConsistencyMode = (typeof CONSISTENCY_MODES)[number];
export const LOAD_BALANCING_POLICIES = ['round-robin', 'random'] as const;
export type LoadBalancingPolicy = (typeof LOAD_BALANCING_POLICIES)[number];

/** The store's runtime policy: what the operator may change live (env at start, the custom resource later). */
export interface RuntimePolicy {
  cacheMaxEntries: number;
  /** The front cache's bound in bytes (bodies, keys and a measured per-entry overhead: front/src/cache.ts). */
  cacheMaxBytes: number;
  cacheTtlMs: number;
  loadBalancing: LoadBalancingPolicy;
  consistencyMode: ConsistencyMode;
  invalidationTimeoutMs: number;
}

/** CACHE_MAX_BYTES' default and spec.cache.maxBytes' (32 MiB). */
export const DEFAULT_CACHE_MAX_BYTES = 33_554_432;

export const POLICY_LIMITS = {
  cacheMaxEntries: { min: 1, max: 1_000_000 },
  /** 1 KiB (one book answer and its overhead) to 1 GiB. */
  cacheMaxBytes: { min: 1024, max: 1_073_741_824 },
  cacheTtlMs: { min: 100, max: 86_400_000 },
  invalidationTimeoutMs: { min: 10, max: 60_000 },
} as const;

/** Returns a list of problems; empty when the policy is valid. */
export function validatePolicy(policy: Partial<RuntimePolicy>): string[] {
  const problems: string[] = [];
  for (const key of ['cacheMaxEntries', 'cacheMaxBytes', 'cacheTtlMs', 'invalidationTimeoutMs'] as const) {
    const value = policy[key];
    if (value === undefined) continue;
    const { min, max } = POLICY_LIMITS[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${key} must be an integer in [${min}, ${max}]`);
    }
  }
  if (policy.consistencyMode !== undefined && !CONSISTENCY_MODES.includes(policy.consistencyMode)) {
    problems.push(`consistencyMode must be one of ${CONSISTENCY_MODES.join(', ')}`);
  }
  if (policy.loadBalancing !== undefined && !LOAD_BALANCING_POLICIES.includes(policy.loadBalancing)) {
    problems.push(`loadBalancing must be one of ${LOAD_BALANCING_POLICIES.join(', ')}`);
  }
  return problems;
}

/**
 * Holds the policy in force. `update` applies a valid change atomically and emits `change` with the
 * previous policy; an invalid change is refused whole and the last good policy stays.
 */
export class PolicyStore extends EventEmitter<{ change: [RuntimePolicy, RuntimePolicy, string] }> {
  #current: RuntimePolicy;
  #source = 'config';

  constructor(initial: RuntimePolicy) {
    super();
    const problems = validatePolicy(initial);
    if (problems.length > 0) throw new Error(`invalid policy: ${problems.join('; ')}`);
    this.#current = Object.freeze({ ...initial });
  }

  get current(): RuntimePolicy {
    return this.#current;
  }

  get source(): string {
    return this.#source;
  }

  update(change: Partial<RuntimePolicy>, source: string): { applied: boolean; problems: string[] } {
    const problems = validatePolicy(change);
    if (problems.length > 0) return { applied: false, problems };
    const previous = this.#current;
    const next = Object.freeze({ ...previous, ...stripUndefined(change) });
    this.#source = source;
    if (JSON.stringify(next) === JSON.stringify(previous)) return { applied: true, problems: [] };
    this.#current = next;
    this.emit('change', next, previous, source);
    return { applied: true, problems: [] };
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
