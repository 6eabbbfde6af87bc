import { readFileSync } from 'node:fs';
import {
  KubeConfig,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
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
  constructor(what: string, ms: number, outcome = 'did not answer') {
    super(`${what} ${outcome} within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Bounds a call the client library cannot bound itself (its requests have no timeout). The late
 * answer, if any, is ignored. Pass `abort` (the controller whose signal the call was given through
 * `abortable`) to also end the request itself, so that it does not hold a socket to a server that
 * stopped answering.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  abort?: AbortController,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(what, ms);
      reject(err);
      abort?.abort(err);
    }, ms);
    timer.unref();
  });
  promise.catch(() => undefined); // A late rejection after the timeout must not go unhandled.
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Settles like `promise`, or rejects with the signal's reason as soon as it aborts (whether or not the
 * call behind `promise` honours the signal). A late rejection is ignored.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Per-call options that make a generated API client call abortable: the request (and the reading of
 * its body) ends when `signal` aborts. Combine with other options, e.g.
 * `setHeaderOptions(name, value, abortable(signal))`.
 */
export function abortable(signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  return {
    middleware: [
      {
        pre: (request: RequestContext) => {
          request.setSignal(signal);
          return new Observable(Promise.resolve(request));
        },
        post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
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
