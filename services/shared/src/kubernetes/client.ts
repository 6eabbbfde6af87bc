import { readFileSync } from 'node:fs';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import type { DiscoveryConfig } from '../discovery-factory.js';
import type { Logger } from '../logger.js';

/** Where the in-cluster ServiceAccount files are mounted. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConnection {
  kubeConfig: KubeConfig;
  namespace: string;
  /** How the config was found, for the start-up log line. */
  source: 'kubeconfig' | 'in-cluster' | 'default';
}

/**
 * Loads the client configuration. An explicit KUBECONFIG wins (it is always a deliberate choice);
 * otherwise a pod (KUBERNETES_SERVICE_HOST set) uses its ServiceAccount; otherwise the default
 * kubeconfig (~/.kube/config).
 */
export function connect(config: DiscoveryConfig, env: NodeJS.ProcessEnv = process.env): KubeConnection {
  const kubeConfig = new KubeConfig();
  let source: KubeConnection['source'];
  if (config.KUBECONFIG) {
    kubeConfig.loadFromFile(config.KUBECONFIG);
    source = 'kubeconfig';
  } else if (env.KUBERNETES_SERVICE_HOST) {
    kubeConfig.loadFromCluster();
    source = 'in-cluster';
  } else {
    kubeConfig.loadFromDefault();
    source = 'default';
  }
  if (!kubeConfig.getCurrentCluster()) throw new Error(`no Kubernetes cluster configured (${source} config)`);
  return { kubeConfig, namespace: resolveNamespace(config, kubeConfig, source), source };
}

function resolveNamespace(
  config: DiscoveryConfig,
  kubeConfig: KubeConfig,
  source: KubeConnection['source'],
): string {
  if (config.POD_NAMESPACE) return config.POD_NAMESPACE;
  if (source === 'in-cluster') {
    try {
      return readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8').trim();
    } catch {
      // Fall through to the context's namespace.
    }
  }
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
}

/** The HTTP status of a failed Kubernetes call (ApiException.code, watch errors' statusCode), if any. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  if (typeof statusCode === 'number') return statusCode;
  return undefined;
}

/** A short, log-friendly description of an API error (never the whole response body). */
export function describeError(err: unknown): { status?: number; message: string } {
  const status = statusOf(err);
  const body = (err as { body?: unknown } | null)?.body;
  let message = err instanceof Error ? err.message : String(err);
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // Not JSON: keep the error's own message.
    }
  } else if (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { message?: unknown }).message === 'string'
  ) {
    message = (body as { message: string }).message;
  }
  // ApiException messages embed the whole response; keep logs to one readable line.
  if (message.length > 300) message = `${message.slice(0, 300)}…`;
  return status === undefined ? { message } : { status, message };
}

export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Bounds a call the client library cannot bound itself (its requests have no timeout). The late
 * answer, if any, is ignored.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
    timer.unref();
  });
  promise.catch(() => undefined); // A late rejection after the timeout must not go unhandled.
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function logConnection(logger: Logger, conn: KubeConnection, what: string): void {
  logger.info(
    { server: conn.kubeConfig.getCurrentCluster()?.server, namespace: conn.namespace, source: conn.source },
    `${what}: using the Kubernetes API`,
  );
}

/**
 * How long a service waits at start for a watch's first list. With a healthy API server that takes
 * milliseconds; when the API is down the service must still start (and answer /livez) promptly: its
 * readiness stays false until the list arrives. The front has three watches, so at most ~9 s.
 */
export const INITIAL_SYNC_WAIT_MS = 3_000;

export interface WatchTimings {
  backoffMaxMs: number;
  idleRestartMs: number;
  syncGraceMs: number;
}

export function watchTimings(config: DiscoveryConfig): WatchTimings {
  return {
    backoffMaxMs: config.KUBE_WATCH_BACKOFF_MAX_MS,
    idleRestartMs: config.KUBE_WATCH_IDLE_RESTART_MS,
    syncGraceMs: config.KUBE_SYNC_GRACE_MS,
  };
}

/**
 * A Watch whose failures always reach `done`. In 1.4.0, when building the request fails (no cluster,
 * an unreadable token file while it rotates) `watch()` rejects instead; on the informer's own
 * reconnect after a clean close nobody awaits that promise, so it would be an unhandled rejection
 * (a crash) and the informer would stop without an `error` event.
 */
export class SafeWatch extends Watch {
  override async watch(...args: Parameters<Watch['watch']>): Promise<AbortController> {
    try {
      return await super.watch(...args);
    } catch (err) {
      args[3](err);
      return new AbortController();
    }
  }
}
