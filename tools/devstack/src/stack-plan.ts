/**
 * What startStack will launch, decided before anything starts: the processes and their names,
 * their ports, the environment that wires each to the others, and the order of start and stop.
 */
import { randomBytes } from 'node:crypto';
import type { ConsistencyMode, ServiceKind, ServiceRole, StackOptions } from './stack.js';

/** A process to be: its name says its service and role (catalog-replica-0). */
export interface ProcessSpec {
  name: string;
  service: ServiceKind;
  role: ServiceRole;
}

export interface StackPlan {
  /** Catalog origin and replicas, then order origin and replicas. */
  services: ProcessSpec[];
  fronts: ProcessSpec[];
  mode: ConsistencyMode;
  adminToken: string;
  internalToken: string;
}

/** Given ports (frontPort, servicePortBase) in process order; [] = found at start. */
export interface FixedPorts {
  fronts: number[];
  services: number[];
}

export interface PortAssignment {
  portOf: Map<string, number>;
  /** Reserved only for an embedded Postgres. */
  postgres: { primary: number; standby: number } | undefined;
}

/** What a service's environment is made from, besides its own spec. */
export interface Wiring {
  plan: StackPlan;
  portOf: Map<string, number>;
  primaryUrl: string;
  standbyUrl: string;
  options: Pick<
    StackOptions,
    'logLevel' | 'cacheMaxEntries' | 'cacheTtlMs' | 'policyFile' | 'knobsUrl' | 'env' | 'envFor'
  >;
}

/** Names first: every process's environment lists the others. Throws on bad counts. */
export function planStack(opts: StackOptions): StackPlan {
  const nFronts = count(opts.fronts, 1, 'fronts', 1);
  const nCatalogReplicas = count(opts.catalogReplicas, 1, 'catalogReplicas', 0);
  const nOrderReplicas = count(opts.orderReplicas, 1, 'orderReplicas', 0);
  const mode = opts.consistencyMode ?? 'strict';
  const adminToken = opts.adminToken ?? randomBytes(24).toString('hex');
  const internalToken = opts.internalToken ?? randomBytes(24).toString('hex');
  if (opts.replicaDatabaseUrl && !opts.databaseUrl) throw new Error('replicaDatabaseUrl needs databaseUrl');
  return {
    services: [
      { name: 'catalog-origin-0', service: 'catalog', role: 'origin' },
      ...range(nCatalogReplicas).map((i): ProcessSpec => ({
        name: `catalog-replica-${i}`,
        service: 'catalog',
        role: 'replica',
      })),
      { name: 'order-origin-0', service: 'order', role: 'origin' },
      ...range(nOrderReplicas).map((i): ProcessSpec => ({
        name: `order-replica-${i}`,
        service: 'order',
        role: 'replica',
      })),
    ],
    fronts: range(nFronts).map((i) => ({ name: `front-${i}`, service: 'front', role: 'front' })),
    mode,
    adminToken,
    internalToken,
  };
}

export function fixedPorts(
  opts: Pick<StackOptions, 'frontPort' | 'servicePortBase'>,
  plan: StackPlan,
): FixedPorts {
  const { frontPort, servicePortBase } = opts;
  return {
    fronts: frontPort ? range(plan.fronts.length).map((i) => frontPort + i) : [],
    services:
      servicePortBase !== undefined ? range(plan.services.length).map((i) => servicePortBase + i) : [],
  };
}

/** Ephemeral ports to find: for processes without a given port, and two for an embedded Postgres. */
export function freePortsNeeded(plan: StackPlan, fixed: FixedPorts, embeddedPostgres: boolean): number {
  return (
    (fixed.fronts.length ? 0 : plan.fronts.length) +
    (fixed.services.length ? 0 : plan.services.length) +
    (embeddedPostgres ? 2 : 0)
  );
}

/** Given ports where there are, found ones (`free`, in order) for the rest: fronts, services, Postgres. */
export function assignPorts(
  plan: StackPlan,
  fixed: FixedPorts,
  free: readonly number[],
  embeddedPostgres: boolean,
): PortAssignment {
  const pool = [...free];
  const take = (): number => {
    const p = pool.shift();
    if (p === undefined) throw new Error('internal: ran out of pre-allocated ports');
    return p;
  };
  const portOf = new Map<string, number>();
  plan.fronts.forEach((s, i) => portOf.set(s.name, fixed.fronts[i] ?? take()));
  plan.services.forEach((s, i) => portOf.set(s.name, fixed.services[i] ?? take()));
  return { portOf, postgres: embeddedPostgres ? { primary: take(), standby: take() } : undefined };
}

export function urlOf(portOf: Map<string, number>, name: string): string {
  return `http://127.0.0.1:${portOf.get(name) ?? 0}`;
}

/** Services before fronts: the order URL lists are written in. */
export function allProcesses(plan: StackPlan): ProcessSpec[] {
  return [...plan.services, ...plan.fronts];
}

/**
 * A service's environment: `base` (the launcher's own) without what must not leak, the stack's
 * settings, the URLs of the processes it talks to, then the caller's extras (`env`, `envFor`).
 */
export function serviceEnv(s: ProcessSpec, w: Wiring, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const all = allProcesses(w.plan);
  const list = (filter: (o: ProcessSpec) => boolean, named: boolean): string =>
    all
      .filter(filter)
      .map((o) => (named ? `${o.name}=${urlOf(w.portOf, o.name)}` : urlOf(w.portOf, o.name)))
      .join(',');
  const frontUrls = list((o) => o.service === 'front', true);
  const opts = w.options;
  const env: NodeJS.ProcessEnv = { ...base };
  // Set by `node --test` in test processes; it must not leak into the services.
  delete env['NODE_TEST_CONTEXT'];
  Object.assign(env, {
    SERVICE_NAME: s.name,
    HOST: '127.0.0.1',
    PORT: String(w.portOf.get(s.name)),
    LOG_LEVEL: opts.logLevel ?? 'info',
    ADMIN_TOKEN: w.plan.adminToken,
    INTERNAL_TOKEN: w.plan.internalToken,
    CONSISTENCY_MODE: w.plan.mode,
    DISCOVERY: 'static',
    SHUTDOWN_DELAY_MS: '0',
  });
  if (opts.policyFile) env['POLICY_FILE'] = opts.policyFile;
  if (s.service === 'catalog') {
    Object.assign(env, {
      ROLE: s.role,
      DATABASE_URL: w.primaryUrl,
      DATABASE_REPLICA_URL: w.standbyUrl,
      CATALOG_ORIGIN_URLS: list((o) => o.service === 'catalog' && o.role === 'origin', false),
      FRONT_URLS: frontUrls,
    });
  } else if (s.service === 'order') {
    // Purchases commit on the primary; order lookups read the standby first.
    Object.assign(env, {
      ROLE: s.role,
      DATABASE_URL: w.primaryUrl,
      DATABASE_REPLICA_URL: w.standbyUrl,
      FRONT_URLS: frontUrls,
    });
  } else {
    Object.assign(env, {
      CATALOG_URLS: list((o) => o.service === 'catalog', true),
      ORDER_URLS: list((o) => o.service === 'order', true),
    });
    if (opts.cacheMaxEntries !== undefined) env['CACHE_MAX_ENTRIES'] = String(opts.cacheMaxEntries);
    if (opts.cacheTtlMs !== undefined) env['CACHE_TTL_MS'] = String(opts.cacheTtlMs);
    if (opts.knobsUrl !== undefined) env['LIVE_KNOBS_URL'] = opts.knobsUrl;
  }
  Object.assign(env, opts.env ?? {}, opts.envFor?.(s) ?? {});
  return env;
}

/**
 * Origins migrate the schema (under an advisory lock), so they go first; then replicas (they
 * read what the origins created), then fronts.
 */
export function startStages(plan: StackPlan): ProcessSpec[][] {
  return [
    plan.services.filter((s) => s.role === 'origin'),
    plan.services.filter((s) => s.role === 'replica'),
    plan.fronts,
  ];
}

/** The reverse: fronts stop taking requests first, origins go last. */
export const STOP_ORDER: readonly ServiceRole[] = ['front', 'replica', 'origin'];

function count(value: number | undefined, dflt: number, what: string, min: number): number {
  const n = value ?? dflt;
  if (!Number.isInteger(n) || n < min || n > 64)
    throw new Error(`${what} must be an integer from ${min} to 64, got ${n}`);
  return n;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
