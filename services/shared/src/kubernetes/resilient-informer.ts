import { EventEmitter } from 'node:events';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import { Backoff } from './backoff.js';
import { describeError, withTimeout } from './client.js';
import type { KubeMetrics, SyncSource } from './kube-metrics.js';

export type ListFn<T extends KubernetesObject> = () => Promise<KubernetesListObject<T>>;

/** The part of @kubernetes/client-node's ListWatch (informer) used here; unit tests pass a fake. */
export interface InformerLike<T> {
  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void;
  on(verb: 'error' | 'connect', cb: (err?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  list(): ReadonlyArray<T>;
}

/** How to list and how to build an informer for one resource (real, or a fake in unit tests). */
export interface InformerSource<T extends KubernetesObject> {
  create: (list: ListFn<T>) => InformerLike<T>;
  list: ListFn<T>;
}

export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** Names the watch in logs and metrics, e.g. `endpointslices/bazar-catalog`. */
  watchName: string;
  /** Builds a fresh informer around the given list function (a new one after each watchdog restart). */
  create: (list: ListFn<T>) => InformerLike<T>;
  list: ListFn<T>;
  logger: Logger;
  metrics: KubeMetrics;
  backoffInitialMs?: number;
  backoffMaxMs: number;
  /** No event, connect or successful list for this long: restart with a fresh list. */
  idleRestartMs: number;
  /** The API may be lost this long before synced() turns false. */
  syncGraceMs: number;
  listTimeoutMs?: number;
  now?: () => number;
  random?: () => number;
}

/**
 * An informer that never silently stalls. @kubernetes/client-node 1.4.0's informer relists on 410 Gone
 * and reconnects after a clean close, but after any other error it emits `error` and stops, and its
 * watches can go quiet for good without an error. This wrapper
 *  - restarts it after an error with exponential backoff and jitter (resuming from the last
 *    resourceVersion; the informer itself relists if that is too old),
 *  - restarts it with a brand-new informer (a full relist) when nothing was heard for `idleRestartMs`,
 *  - keeps the last known objects while the API is unreachable (a consumer must not lose its pool
 *    because the control plane blinked),
 *  - reports synced() false until the first list, and again once the API has been lost for longer
 *    than `syncGraceMs`.
 * It emits `change` with the full object list, coalesced per tick (a relist fires many callbacks).
 */
export class ResilientInformer<T extends KubernetesObject>
  extends EventEmitter<{ change: [readonly T[]] }>
  implements SyncSource
{
  readonly watchName: string;
  readonly #opts: ResilientInformerOptions<T>;
  readonly #backoff: Backoff;
  readonly #now: () => number;
  #informer: InformerLike<T> | undefined;
  /** Whether the current informer instance has completed a list (its cache is complete). */
  #currentListed = false;
  #everListed = false;
  #objects: readonly T[] = Object.freeze([]);
  #errors = 0;
  #unhealthySince: number | undefined;
  #reportedLost = false;
  #lastActivity = 0;
  #emitScheduled = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;
  #syncWaiters: Array<(synced: boolean) => void> = [];
  #untrack: () => void = () => undefined;

  constructor(opts: ResilientInformerOptions<T>) {
    super();
    this.#opts = opts;
    this.watchName = opts.watchName;
    this.#now = opts.now ?? Date.now;
    this.#backoff = new Backoff({
      initialMs: opts.backoffInitialMs ?? 500,
      maxMs: opts.backoffMaxMs,
      ...(opts.random ? { random: opts.random } : {}),
    });
  }

  start(): void {
    this.#untrack = this.#opts.metrics.track(this);
    this.#lastActivity = this.#now();
    const period = Math.max(100, Math.min(this.#opts.idleRestartMs / 4, 30_000));
    this.#watchdog = setInterval(() => this.#checkIdle(), period);
    this.#watchdog.unref();
    void this.#run(true);
  }

  /** The last complete view; kept while the API is unreachable. */
  objects(): readonly T[] {
    return this.#objects;
  }

  synced(): boolean {
    if (!this.#everListed) return false;
    return this.#unhealthySince === undefined || this.#now() - this.#unhealthySince <= this.#opts.syncGraceMs;
  }

  /** Resolves true once the first list has been applied, false after `timeoutMs` or on close. */
  waitForSync(timeoutMs: number): Promise<boolean> {
    if (this.#everListed) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      this.#syncWaiters.push((synced) => {
        clearTimeout(timer);
        resolve(synced);
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#watchdog);
    this.#untrack();
    this.#settleWaiters(false);
    const informer = this.#informer;
    this.#informer = undefined;
    await informer?.stop().catch(() => undefined);
  }

  async #run(fresh: boolean): Promise<void> {
    if (this.#closed) return;
    let informer: InformerLike<T>;
    try {
      if (fresh || !this.#informer) this.#replaceInformer();
      informer = this.#informer as InformerLike<T>;
    } catch (err) {
      // Building the informer failed (never seen; e.g. a broken config): retry like any error.
      this.#opts.logger.error(
        { watch: this.watchName, error: describeError(err).message },
        'could not build the informer',
      );
      this.#scheduleRestart('error', true);
      return;
    }
    const errorsBefore = this.#errors;
    try {
      await informer.start();
    } catch (err) {
      this.#onError(informer, err);
      return;
    }
    // start() resolves once the watch request is answered; no error meanwhile means it is open.
    if (informer === this.#informer && !this.#closed && this.#errors === errorsBefore) this.#healthy();
  }

  #replaceInformer(): void {
    const previous = this.#informer;
    const informer: InformerLike<T> = this.#opts.create(() => this.#list(informer));
    const onObject = () => this.#onEvent(informer);
    informer.on('add', onObject);
    informer.on('update', onObject);
    informer.on('delete', onObject);
    informer.on('connect', () => {
      if (informer === this.#informer) this.#lastActivity = this.#now();
    });
    // Always handled: an informer's error is data here, never an unhandled rejection or a crash.
    informer.on('error', (err) => this.#onError(informer, err));
    this.#informer = informer;
    this.#currentListed = false;
    // The old instance's callbacks are ignored from now on (they compare against #informer); stopping
    // it aborts its request, which it reports as an error we ignore.
    if (previous) void previous.stop().catch(() => undefined);
  }

  async #list(informer: InformerLike<T>): Promise<KubernetesListObject<T>> {
    const result = await withTimeout(
      this.#opts.list(),
      this.#opts.listTimeoutMs ?? 30_000,
      `list ${this.watchName}`,
    );
    // The informer applies the list to its cache synchronously after this promise settles; look
    // after that, on the next turn of the event loop.
    setImmediate(() => {
      if (informer !== this.#informer || this.#closed) return;
      this.#currentListed = true;
      this.#everListed = true;
      this.#healthy();
      this.#scheduleEmit();
    });
    return result;
  }

  #onEvent(informer: InformerLike<T>): void {
    if (informer !== this.#informer || this.#closed) return;
    this.#healthy();
    this.#scheduleEmit();
  }

  #scheduleEmit(): void {
    if (this.#emitScheduled) return;
    this.#emitScheduled = true;
    setImmediate(() => this.#emit());
  }

  #emit(): void {
    this.#emitScheduled = false;
    // A fresh informer that has not listed yet has an empty cache: keep the last complete view.
    if (this.#closed || !this.#informer || !this.#currentListed) return;
    this.#objects = Object.freeze([...this.#informer.list()]);
    this.emit('change', this.#objects);
    this.#settleWaiters(true);
  }

  #settleWaiters(synced: boolean): void {
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const resolve of waiters) resolve(synced);
  }

  #healthy(): void {
    this.#lastActivity = this.#now();
    this.#backoff.reset();
    if (this.#unhealthySince === undefined) return;
    const downMs = this.#now() - this.#unhealthySince;
    this.#unhealthySince = undefined;
    this.#reportedLost = false;
    this.#opts.logger.info({ watch: this.watchName, downMs }, 'Kubernetes watch recovered');
  }

  #onError(informer: InformerLike<T>, err: unknown): void {
    if (informer !== this.#informer || this.#closed) return;
    this.#errors++;
    const firstInOutage = this.#unhealthySince === undefined;
    this.#unhealthySince ??= this.#now();
    this.#logError(err, firstInOutage);
    this.#scheduleRestart('error', false);
  }

  /** One warning per outage (retries are debug), one error when it outlasts the grace period. */
  #logError(err: unknown, firstInOutage: boolean): void {
    const { logger, syncGraceMs } = this.#opts;
    const { status, message } = describeError(err);
    const downMs = this.#now() - (this.#unhealthySince ?? this.#now());
    const fields = { watch: this.watchName, status, error: message, downMs };
    if (status === 401 || status === 403) {
      logger.error(fields, 'Kubernetes watch refused: check the ServiceAccount token and its Role');
    } else if (firstInOutage) {
      logger.warn(fields, 'Kubernetes watch failed; restarting with backoff, keeping the last known state');
    } else if (downMs > syncGraceMs && !this.#reportedLost) {
      logger.error(
        { ...fields, syncGraceMs },
        'Kubernetes API lost for longer than the grace period; reporting not synced',
      );
    } else {
      logger.debug(fields, 'Kubernetes watch still failing');
    }
    if (downMs > syncGraceMs) this.#reportedLost = true;
  }

  #checkIdle(): void {
    if (this.#closed || this.#restartTimer) return;
    const idleMs = this.#now() - this.#lastActivity;
    if (idleMs < this.#opts.idleRestartMs) return;
    this.#lastActivity = this.#now();
    this.#opts.logger.warn(
      { watch: this.watchName, idleMs },
      'Kubernetes watch idle too long; restarting with a fresh list',
    );
    this.#scheduleRestart('watchdog', true);
  }

  #scheduleRestart(reason: 'error' | 'watchdog', fresh: boolean): void {
    if (this.#closed || this.#restartTimer) return;
    const delayMs = reason === 'watchdog' ? 0 : this.#backoff.next();
    this.#opts.metrics.watchRestarts.inc({ watch: this.watchName, reason });
    this.#opts.logger.debug({ watch: this.watchName, reason, delayMs }, 'Kubernetes watch restart scheduled');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      void this.#run(fresh);
    }, delayMs);
  }
}
