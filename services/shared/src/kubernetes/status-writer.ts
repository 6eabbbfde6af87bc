import os from 'node:os';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Discovery } from '../discovery.js';
import type { DiscoveryConfig } from '../discovery-factory.js';
import type { Logger } from '../logger.js';
import type { PolicyStore } from '../policy.js';
import {
  abortable,
  connect,
  describeError,
  logConnection,
  statusOf,
  withTimeout,
  type KubeConnection,
} from './client.js';
import { frontStatus, nextStatus, sameStatus, type CacheFigures } from './status-report.js';
import {
  applyTrackerFor,
  STORE_POLICY,
  type PolicyApplyTracker,
  type StorePolicyObject,
} from './store-policy.js';

const API_TIMEOUT_MS = 10_000;
const MAX_CONFLICT_RETRIES = 5;

/** Reads and merge-patches the StorePolicy's status subresource (RBAC: storepolicies/status get, patch). */
export interface StatusApi {
  /** The resource, or undefined when it does not exist. */
  get(): Promise<StorePolicyObject | undefined>;
  /** A JSON merge patch of the status subresource; rejects with HTTP 409 on a resourceVersion conflict. */
  patch(body: object): Promise<void>;
}

export function statusApi(conn: KubeConnection, name: string): StatusApi {
  const api = conn.kubeConfig.makeApiClient(CustomObjectsApi);
  const target = { ...STORE_POLICY, namespace: conn.namespace, name };
  return {
    async get() {
      // Aborted at the deadline: a request to an API server that stopped answering must not keep a socket.
      const abort = new AbortController();
      try {
        return (await withTimeout(
          api.getNamespacedCustomObjectStatus(target, abortable(abort.signal)),
          API_TIMEOUT_MS,
          'get StorePolicy',
          abort,
        )) as StorePolicyObject;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    async patch(body) {
      const abort = new AbortController();
      await withTimeout(
        api.patchNamespacedCustomObjectStatus(
          { ...target, body },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch, abortable(abort.signal)),
        ),
        API_TIMEOUT_MS,
        'patch StorePolicy status',
        abort,
      );
    },
  };
}

export interface StatusWriterSource {
  config: DiscoveryConfig;
  logger: Logger;
  policy: PolicyStore;
  cache: { stats(): CacheFigures };
  discoveries: Record<string, Discovery>;
  ready: () => Promise<boolean>;
  name: string;
  /** This front's pod name (default: SERVICE_NAME, else the host name, as the services use). */
  podName?: string;
}

export interface StatusWriterOptions extends Omit<StatusWriterSource, 'config' | 'podName'> {
  podName: string;
  api: StatusApi;
  intervalMs: number;
  now?: () => Date;
  random?: () => number;
}

/**
 * Writes the front's view of the store into the StorePolicy status, every `intervalMs` and soon after
 * any policy, spec or endpoint change.
 *
 * Several fronts write one object. Each owns only `status.fronts.<pod>`; the aggregate (cache totals,
 * lowest observedGeneration, Ready) is recomputed by whoever writes, from the entries it just read.
 * The write is a JSON merge patch carrying `metadata.resourceVersion`, which the API server treats as
 * a precondition: if another front wrote in between, it answers 409 and this front re-reads and
 * recomputes (optimistic concurrency). So no front ever overwrites another's entry, and the aggregate
 * is always computed from the entries it is stored with. Entries not refreshed for a while (a front
 * killed without a goodbye) are dropped by the next writer.
 */
export class StorePolicyStatusWriter {
  readonly #tracker: PolicyApplyTracker;
  readonly #now: () => Date;
  readonly #random: () => number;
  readonly #heartbeatMs: number;
  readonly #staleAfterMs: number;
  #timer: NodeJS.Timeout | undefined;
  #kickTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #lastWrite = 0;
  #failing = false;
  #reportedMissing = false;
  readonly #unsubscribe: Array<() => void> = [];

  static async start(source: StatusWriterSource): Promise<{ close(): Promise<void> }> {
    const conn = connect(source.config);
    logConnection(source.logger, conn, `StorePolicy ${source.name} status`);
    const writer = new StorePolicyStatusWriter({
      ...source,
      podName: source.podName ?? (process.env.SERVICE_NAME?.trim() || os.hostname()),
      api: statusApi(conn, source.name),
      intervalMs: source.config.KUBE_STATUS_INTERVAL_MS,
    });
    writer.start();
    return writer;
  }

  constructor(private readonly opts: StatusWriterOptions) {
    this.#tracker = applyTrackerFor(opts.policy);
    this.#now = opts.now ?? (() => new Date());
    this.#random = opts.random ?? Math.random;
    // Unchanged figures are still re-written now and then, so others can tell this front is alive.
    this.#heartbeatMs = Math.max(15_000, 3 * opts.intervalMs);
    this.#staleAfterMs = 4 * this.#heartbeatMs;
  }

  start(): void {
    this.#timer = setInterval(() => this.#kick(0), this.opts.intervalMs);
    this.#timer.unref();
    const soon = () => this.#kick(100);
    this.opts.policy.on('change', soon);
    this.#tracker.on('change', soon);
    this.#unsubscribe.push(
      () => this.opts.policy.off('change', soon),
      () => this.#tracker.off('change', soon),
    );
    for (const discovery of Object.values(this.opts.discoveries)) {
      discovery.on('change', soon);
      this.#unsubscribe.push(() => discovery.off('change', soon));
    }
    this.#kick(0);
  }

  /** Stops writing and removes this front's entry (best effort: a killed pod's entry goes stale instead). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#kickTimer);
    for (const off of this.#unsubscribe) off();
    // Shutdown must not wait on a hung API server: bound both the write in flight and the goodbye.
    if (this.#running)
      await withTimeout(this.#running, 2_000, 'in-flight status write').catch(() => undefined);
    try {
      await withTimeout(this.#write(false), 2_000, 'removing this front from the StorePolicy status');
    } catch (err) {
      this.opts.logger.debug(
        { err: describeError(err) },
        'could not remove this front from the StorePolicy status',
      );
    }
  }

  /** Runs one write now (tests) and resolves when it is done. */
  async flush(): Promise<void> {
    this.#kick(0);
    await this.#running;
  }

  #kick(delayMs: number): void {
    if (this.#closed) return;
    if (delayMs > 0) {
      if (this.#kickTimer) return;
      this.#kickTimer = setTimeout(() => {
        this.#kickTimer = undefined;
        this.#kick(0);
      }, delayMs);
      this.#kickTimer.unref();
      return;
    }
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#write(true)
      .then(() => this.#recovered())
      .catch((err: unknown) => this.#failed(err))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.#kick(0);
        }
      });
  }

  /** Read, recompute, merge-patch with a resourceVersion precondition; re-read on conflict. */
  async #write(present: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const resource = await this.opts.api.get();
      if (!resource) return this.#missing();
      this.#reportedMissing = false;
      const body = await this.#patchFor(resource, present);
      if (!body) return;
      try {
        await this.opts.api.patch(body);
        this.#lastWrite = this.#now().getTime();
        return;
      } catch (err) {
        if (statusOf(err) === 404) return this.#missing();
        if (statusOf(err) !== 409 || attempt >= MAX_CONFLICT_RETRIES) throw err;
        // Another front wrote first: back off a little (jittered, so two fronts do not collide again).
        await new Promise((r) => setTimeout(r, 10 + Math.round(this.#random() * 40 * attempt)));
      }
    }
  }

  /** The merge patch to send, or undefined when there is nothing new and the heartbeat is recent. */
  async #patchFor(resource: StorePolicyObject, present: boolean): Promise<object | undefined> {
    const { policy, podName } = this.opts;
    const now = this.#now();
    const generation = resource.metadata?.generation;
    const own = present ? frontStatus(await this.#ownState(), generation, now) : undefined;
    const next = nextStatus({
      existing: resource.status,
      podName,
      own,
      policy: policy.current,
      endpoints: this.#endpointCounts(),
      now,
      staleAfterMs: this.#staleAfterMs,
    });
    const heartbeatDue = now.getTime() - this.#lastWrite >= this.#heartbeatMs;
    if (present && !heartbeatDue && sameStatus(resource.status, next.status)) return undefined;
    return {
      metadata: { resourceVersion: resource.metadata?.resourceVersion },
      status: { ...next.status, fronts: next.frontsPatch },
    };
  }

  async #ownState() {
    const { policy, cache, discoveries } = this.opts;
    const state = this.#tracker.state;
    const ready = await this.opts.ready().catch(() => false);
    return {
      ...(state.observedGeneration !== undefined ? { observedGeneration: state.observedGeneration } : {}),
      problems: state.problems,
      unsynced: Object.entries(discoveries)
        .filter(([, d]) => !d.synced())
        .map(([name]) => name),
      ready,
      policy: policy.current,
      cache: cache.stats(),
      endpoints: this.#endpointCounts(),
    };
  }

  #endpointCounts(): Record<string, number> {
    return Object.fromEntries(
      Object.entries(this.opts.discoveries).map(([name, d]) => [name, d.endpoints().length]),
    );
  }

  #missing(): void {
    if (!this.#reportedMissing) {
      this.opts.logger.warn(
        { name: this.opts.name },
        'StorePolicy not found; no status to write until it exists',
      );
    }
    this.#reportedMissing = true;
  }

  #recovered(): void {
    if (this.#failing)
      this.opts.logger.info({ name: this.opts.name }, 'StorePolicy status writes work again');
    this.#failing = false;
  }

  /** Logged once per outage, not every interval; the next tick retries. */
  #failed(err: unknown): void {
    const fields = { name: this.opts.name, ...describeError(err) };
    if (this.#failing) this.opts.logger.debug(fields, 'StorePolicy status write failed again');
    else this.opts.logger.warn(fields, 'StorePolicy status write failed; retrying every interval');
    this.#failing = true;
  }
}
