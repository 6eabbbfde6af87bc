import os from 'node:os';
import { Gauge } from 'prom-client';
import type { Metrics } from './metrics.js';
import { int, oneOf, secret, str } from './config.js';
import { tracingSchema } from './tracing.js';
import {
  CONSISTENCY_MODES,
  DEFAULT_CACHE_MAX_BYTES,
  LOAD_BALANCING_POLICIES,
  PolicyStore,
  type RuntimePolicy,
} from './policy.js';

/** Settings every service reads; each service spreads these into its own schema. */
export const commonSchema = {
  /** The pod or process name; shown in X-Served-By and logs. */
  SERVICE_NAME: str({ default: os.hostname() }),
  HOST: str({ default: '0.0.0.0' }),
  PORT: int({ default: 8080, min: 0, max: 65_535 }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  /** Time between readiness going false and the listener closing, so load balancers stop sending. */
  SHUTDOWN_DELAY_MS: int({ default: 0, min: 0, max: 120_000 }),
  DRAIN_TIMEOUT_MS: int({ default: 10_000, min: 0, max: 120_000 }),
  CONSISTENCY_MODE: oneOf(CONSISTENCY_MODES, { default: 'strict' }),
  LOAD_BALANCING: oneOf(LOAD_BALANCING_POLICIES, { default: 'round-robin' }),
  INVALIDATION_TIMEOUT_MS: int({ default: 1000, min: 10, max: 60_000 }),
  UPSTREAM_TIMEOUT_MS: int({ default: 2000, min: 10, max: 60_000 }),
  /**
   * The same for a call that carries a write (a purchase to an order pod; a price change or restock to
   * the catalog, and from a catalog replica to the origin): a strict write may wait up to
   * SYNC_COMMIT_TIMEOUT_MS for the standby and then INVALIDATION_TIMEOUT_MS for the fronts before it
   * answers, and cutting it earlier turns a committed write into 504 upstream_timeout. Keep it above
   * their sum.
   */
  UPSTREAM_WRITE_TIMEOUT_MS: int({ default: 5000, min: 10, max: 120_000 }),
  UPSTREAM_MAX_ATTEMPTS: int({ default: 3, min: 1, max: 10 }),
  /** Slow clients are cut off (408) when a request's headers, or all of it, take longer than this. */
  HTTP_HEADERS_TIMEOUT_MS: int({ default: 10_000, min: 100, max: 600_000 }),
  HTTP_REQUEST_TIMEOUT_MS: int({ default: 15_000, min: 100, max: 600_000 }),
  INTERNAL_TOKEN: secret(),
  ...tracingSchema,
};

export const adminTokenSchema = { ADMIN_TOKEN: secret() };

/**
 * The runtime policy in force at start, from the environment; the StorePolicy resource may change it
 * live. Services without a cache keep the cache fields at their defaults (unused).
 */
export function policyFromConfig(config: {
  LOAD_BALANCING: RuntimePolicy['loadBalancing'];
  CONSISTENCY_MODE: RuntimePolicy['consistencyMode'];
  INVALIDATION_TIMEOUT_MS: number;
  CACHE_MAX_ENTRIES?: number;
  CACHE_MAX_BYTES?: number;
  CACHE_TTL_MS?: number;
}): PolicyStore {
  return new PolicyStore({
    cacheMaxEntries: config.CACHE_MAX_ENTRIES ?? 10_000,
    cacheMaxBytes: config.CACHE_MAX_BYTES ?? DEFAULT_CACHE_MAX_BYTES,
    cacheTtlMs: config.CACHE_TTL_MS ?? 60_000,
    loadBalancing: config.LOAD_BALANCING,
    consistencyMode: config.CONSISTENCY_MODE,
    invalidationTimeoutMs: config.INVALIDATION_TIMEOUT_MS,
  });
}

/**
 * `bazar_policy_info{consistency_mode, load_balancing}` = 1: the policy in force, for dashboards and
 * alerts (read at scrape time; a change of policy shows at the next scrape).
 */
export function registerPolicyInfo(metrics: Metrics, policy: PolicyStore): void {
  new Gauge({
    name: 'bazar_policy_info',
    help: 'The runtime policy in force (1): consistency mode and load balancing',
    labelNames: ['consistency_mode', 'load_balancing'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      const { consistencyMode, loadBalancing } = policy.current;
      this.set({ consistency_mode: consistencyMode, load_balancing: loadBalancing }, 1);
    },
  });
}
