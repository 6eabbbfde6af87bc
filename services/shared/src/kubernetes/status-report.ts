import type { RuntimePolicy } from '../policy.js';
import type { FrontStatus, ReadyCondition, StorePolicyStatus } from './store-policy.js';

/**
 * Pure status arithmetic for the StorePolicy (no I/O, unit-tested): one front's own entry, and the
 * aggregate every front recomputes from all live entries when it writes.
 */

export interface CacheFigures {
  size: number;
  maxEntries: number;
  /** Absent: a cache that does not count bytes (the figures are then reported without them). */
  bytes?: number;
  ttlMs: number;
  hits: number;
  misses: number;
}

export interface OwnState {
  /** The generation whose spec this front's watch last looked at. */
  observedGeneration?: number;
  /** Why that spec was refused; empty when it was applied. */
  problems: readonly string[];
  /** Discoveries that are not synced, by logical service. */
  unsynced: readonly string[];
  /** The front's own readiness (what /readyz says). */
  ready: boolean;
  policy: RuntimePolicy;
  cache: CacheFigures;
  endpoints: Record<string, number>;
}

export function hitRatio(hits: number, misses: number): string {
  const lookups = hits + misses;
  return lookups === 0 ? 'n/a' : (hits / lookups).toFixed(2);
}

/** This front's entry under status.fronts.<pod>. `generation` is the resource's current one. */
export function frontStatus(own: OwnState, generation: number | undefined, now: Date): FrontStatus {
  const [ready, reason, message] = readiness(own, generation);
  return {
    ...(own.observedGeneration !== undefined ? { observedGeneration: own.observedGeneration } : {}),
    ready,
    reason,
    message,
    consistencyMode: own.policy.consistencyMode,
    endpoints: { ...own.endpoints },
    cache: {
      entries: own.cache.size,
      ...(own.cache.bytes !== undefined ? { bytes: own.cache.bytes } : {}),
      hits: own.cache.hits,
      misses: own.cache.misses,
      hitRatio: hitRatio(own.cache.hits, own.cache.misses),
    },
    lastUpdateTime: now.toISOString(),
  };
}

function readiness(own: OwnState, generation: number | undefined): [boolean, string, string] {
  if (own.problems.length > 0) {
    return [false, 'InvalidSpec', `spec refused, last good policy in force: ${own.problems.join('; ')}`];
  }
  if (own.unsynced.length > 0) return [false, 'DiscoveryNotSynced', `not synced: ${own.unsynced.join(', ')}`];
  if (generation !== undefined && own.observedGeneration !== generation) {
    return [false, 'PolicyNotObserved', `generation ${generation} not applied yet`];
  }
  if (!own.ready) return [false, 'NotReady', 'the front is not ready'];
  return [true, 'PolicyApplied', `generation ${generation ?? '?'} applied`];
}

export interface NextStatus {
  /** The full status after this front's write (what `kubectl get` will show). */
  status: StorePolicyStatus;
  /** The `fronts` part of the merge patch: own entry, and null for entries that went stale. */
  frontsPatch: Record<string, FrontStatus | null>;
}

/**
 * The status after this front writes its own entry: stale entries (fronts gone without saying so)
 * are dropped, and the aggregate is recomputed over the live ones: observedGeneration is the lowest
 * any live front has applied, cache figures are summed, Ready is True only if every live front is.
 */
export function nextStatus(input: {
  existing: StorePolicyStatus | undefined;
  podName: string;
  own: FrontStatus | undefined;
  policy: RuntimePolicy;
  endpoints: Record<string, number>;
  now: Date;
  staleAfterMs: number;
}): NextStatus {
  const { existing, podName, own, now } = input;
  const fronts: Record<string, FrontStatus> = {};
  const frontsPatch: Record<string, FrontStatus | null> = {};
  for (const [name, entry] of Object.entries(existing?.fronts ?? {})) {
    if (name === podName) continue;
    const age = now.getTime() - Date.parse(entry.lastUpdateTime);
    if (Number.isFinite(age) && age <= input.staleAfterMs) fronts[name] = entry;
    else frontsPatch[name] = null;
  }
  if (own) fronts[podName] = frontsPatch[podName] = own;
  else if (existing?.fronts?.[podName]) frontsPatch[podName] = null;

  const live = Object.entries(fronts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const generations = live.map(([, f]) => f.observedGeneration).filter((g): g is number => g !== undefined);
  const hits = live.reduce((n, [, f]) => n + f.cache.hits, 0);
  const misses = live.reduce((n, [, f]) => n + f.cache.misses, 0);
  const status: StorePolicyStatus = {
    ...(generations.length > 0 ? { observedGeneration: Math.min(...generations) } : {}),
    consistencyMode: input.policy.consistencyMode,
    endpoints: { ...input.endpoints },
    cache: {
      entries: live.reduce((n, [, f]) => n + f.cache.entries, 0),
      maxEntries: input.policy.cacheMaxEntries,
      bytes: live.reduce((n, [, f]) => n + (f.cache.bytes ?? 0), 0),
      maxBytes: input.policy.cacheMaxBytes,
      ttlMs: input.policy.cacheTtlMs,
      hits,
      misses,
      hitRatio: hitRatio(hits, misses),
    },
    fronts,
    conditions: [readyCondition(live, existing?.conditions, now)],
  };
  return { status, frontsPatch };
}

function readyCondition(
  live: ReadonlyArray<[string, FrontStatus]>,
  previous: readonly ReadyCondition[] | undefined,
  now: Date,
): ReadyCondition {
  const invalid = live.find(([, f]) => f.reason === 'InvalidSpec');
  const notReady = invalid ?? live.find(([, f]) => !f.ready);
  const generations = live.map(([, f]) => f.observedGeneration).filter((g): g is number => g !== undefined);
  let status: ReadyCondition['status'];
  let reason: string;
  let message: string;
  if (live.length === 0) {
    [status, reason, message] = ['Unknown', 'NoFronts', 'no front has reported'];
  } else if (notReady) {
    const [name, front] = notReady;
    [status, reason, message] = ['False', front.reason, `${name}: ${front.message}`];
  } else {
    [status, reason, message] = ['True', 'PolicyApplied', `${live.length} front(s) ready, policy applied`];
  }
  const before = previous?.find((c) => c.type === 'Ready');
  // Per API conventions, lastTransitionTime moves only when the status itself changes.
  const lastTransitionTime =
    before && before.status === status ? before.lastTransitionTime : now.toISOString();
  return {
    type: 'Ready',
    status,
    reason,
    message,
    lastTransitionTime,
    ...(generations.length > 0 ? { observedGeneration: Math.min(...generations) } : {}),
  };
}

/** True when `next` says nothing new compared to `existing` (timestamps aside). */
export function sameStatus(existing: StorePolicyStatus | undefined, next: StorePolicyStatus): boolean {
  return JSON.stringify(normalize(existing ?? {})) === JSON.stringify(normalize(next));
}

function normalize(status: StorePolicyStatus): unknown {
  const fronts = Object.fromEntries(
    Object.entries(status.fronts ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, f]) => [name, sortKeys({ ...f, lastUpdateTime: undefined })]),
  );
  return sortKeys({ ...status, fronts });
}

/** Key order does not matter to the API server and must not matter here. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}
