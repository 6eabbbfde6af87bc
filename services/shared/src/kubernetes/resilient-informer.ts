import { EventEmitter } from 'node:events';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import { Backoff } from './backoff.js';
import { watchBounds, type WatchBounds } from './bounded-watch.js';
import { describeError, statusOf, TimeoutError, untilAborted } from './client.js';
import type { KubeMetrics, SyncSource } from './kube-metrics.js';

/** Lists the resource; the request must end when `signal` aborts (see `abortable` in client.ts). */
export type ListFn<T extends KubernetesObject> = (signal: AbortSignal) => Promise<KubernetesListObject<T>>;

/** The part of @kubernetes/client-node's ListWatch (informer) used here; unit tests pass a fake. */
export interface InformerLike<T> {
  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void;
  on(verb: 'error' | 'connect', cb: (err?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  list(): ReadonlyArray<T>;
}

/** What an informer's watch gets from the ResilientInformer around it. */
export interface WatchHooks {
  /** The deadlines its requests must keep (BoundedWatch). */
  bounds: WatchBounds;
  /** To call whenever the API server answers the watch: a response, an event or bookmark, a clean end. */
  onAnswer: () => void;
}

/** How to list and how to build an informer for one resource (real, or a fake in unit tests). */
export interface InformerSource<T extends KubernetesObject> {
  /** A new informer around `list` (the bounded list to give it), its watch bound by `hooks`. */
  create: (list: () => Promise<KubernetesListObject<T>>, hooks: WatchHooks) => InformerLike<T>;
  list: ListFn<T>;
}

export interface ResilientInformerOptions<T extends KubernetesObject> extends InformerSource<T> {
  /** Names the watch in logs and metrics, e.g. `endpointslices/bazar-catalog`. */
  watchName: string;
  logger: Logger;
  metrics: KubeMetrics;
  backoffInitialMs?: number;
  backoffMaxMs: number;
  /**
   * The watchdog (KUBE_WATCH_IDLE_RESTART_MS, at most MAX_STALL_MS): nothing heard from the API server and
   * no failure for this long means stuck, and the informer is replaced. The request deadlines derive
   * from it (watchBounds).
   */
  idleRestartMs: number;
  /** The API may be lost this long before synced() turns false. */
  syncGraceMs: number;
  /** Overrides of the derived bounds (unit tests). */
  bounds?: Partial<WatchBounds>;
  /** Ceiling of the backoff while the server does not answer at all (default UNREACHABLE_BACKOFF_MAX_MS). */
  unreachableBackoffMaxMs?: number;
  now?: () => number;
  random?: () => number;
}

/**
 * Retries after failures that got no answer at all (connection refused or reset, a request deadline)
 * wait at most this long (or KUBE_WATCH_BACKOFF_MAX_MS if lower). Such a retry costs the server nothing
 * while it is away, and it is what finds the server as soon as it is back: with the full backoff the
 * next attempt could come up to KUBE_WATCH_BACKOFF_MAX_MS after the API server is ready again.
 */
export const UNREACHABLE_BACKOFF_MAX_MS = 2_000;

type RestartReason = 'error' | 'timeout' | 'watchdog';

/**
 * An informer that never silently stalls. @kubernetes/client-node 1.4.0's informer relists on 410 Gone
 * and reconnects after a clean close, but after any other error it emits `error` and stops, and its
 * requests have no deadline, so a watch or list to an API server that stopped answering without closing
 * the connection waits forever. This wrapper
 *  - gives every request a deadline (BoundedWatch, and an aborted list), and asks the server to end each
 *    watch after `bounds.timeoutSeconds`, so that a healthy watch hears from it at least that often,
 *  - restarts after a failure with exponential backoff and jitter: resuming from the last
 *    resourceVersion when the server did not answer (it may come back with its state intact), with a
 *    fresh informer and a full list when it answered with an error; retries while the server does not
 *    answer at all wait at most UNREACHABLE_BACKOFF_MAX_MS, and the first answer after that starts the
 *    backoff over (an API server that is starting refuses for a moment, then serves),
 *  - replaces the informer (a full relist) when it neither heard from the API server nor failed for
 *    `bounds.stallMs` (a promise that never settles, whatever the cause),
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
  readonly bounds: WatchBounds;
  readonly #opts: ResilientInformerOptions<T>;
  readonly #backoff: Backoff;
  readonly #now: () => number;
  #informer: InformerLike<T> | undefined;
  /** Aborted when the current informer is replaced or closed: ends its list in flight. */
  #instance: AbortController | undefined;
  /** Whether the current informer instance has completed a list (its cache is complete). */
  #currentListed = false;
  #everListed = false;
  #objects: readonly T[] = Object.freeze([]);
  #failures = 0;
  /** Failures in the current outage (for the recovery log line). */
  #outageFailures = 0;
  #unhealthySince: number | undefined;
  #reportedLost = false;
  /** When the API server last answered (a list, a watch response, an event, a watch's clean end). */
  #lastAnswer = 0;
  /** When the informer last made progress: an answer, or a failure (the restart loop is turning). */
  #lastProgress = 0;
  #lastFailureAt = Number.NEGATIVE_INFINITY;
  /** Whether the last failure got no answer from the server at all. */
  #unreachable = false;
  #emitScheduled = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartFresh = false;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;
  #syncWaiters: Array<(synced: boolean) => void> = [];
  #untrack: () => void = () => undefined;

  constructor(opts: ResilientInformerOptions<T>) {
    super();
    this.#opts = opts;
    this.watchName = opts.watchName;
    this.bounds = { ...watchBounds(opts.idleRestartMs), ...opts.bounds };
    this.#now = opts.now ?? Date.now;
    this.#backoff = new Backoff({
      initialMs: opts.backoffInitialMs ?? 500,
      maxMs: opts.backoffMaxMs,
      ...(opts.random ? { random: opts.random } : {}),
    });
  }

  start(): void {
    this.#untrack = this.#opts.metrics.track(this);
    this.#lastAnswer = this.#lastProgress = this.#now();
    const period = Math.max(20, Math.min(this.bounds.stallMs / 4, 5_000));
    this.#watchdog = setInterval(() => this.#checkStall(), period);
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

  /** Milliseconds since the API server last answered this watch (a healthy one stays under its timeout). */
  silenceMs(): number {
    return this.#now() - this.#lastAnswer;
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
    this.#instance?.abort(new Error('informer closed'));
    await informer?.stop().catch(() => undefined);
  }

  async #run(fresh: boolean): Promise<void> {
    if (this.#closed) return;
    let informer: InformerLike<T>;
    try {
      if (fresh || !this.#informer) this.#replaceInformer();
      informer = this.#informer as InformerLike<T>;
    } catch (err) {
      // Building the informer failed (never seen; e.g. a broken config): retry like any failure.
      this.#opts.logger.error(
        { watch: this.watchName, error: describeError(err).message },
        'could not build the informer',
      );
      this.#failures++;
      this.#lastProgress = this.#now();
      this.#unhealthySince ??= this.#now();
      this.#scheduleRestart('error', true);
      return;
    }
    const failuresBefore = this.#failures;
    try {
      await informer.start();
    } catch (err) {
      this.#onError(informer, err);
      return;
    }
    // start() resolves once the watch request is answered; no failure meanwhile means it is open.
    if (this.#failures === failuresBefore) this.#answered(informer);
  }

  #replaceInformer(): void {
    const previous = this.#informer;
    const previousInstance = this.#instance;
    const instance = new AbortController();
    const informer: InformerLike<T> = this.#opts.create(() => this.#list(informer, instance.signal), {
      bounds: this.bounds,
      onAnswer: () => this.#answered(informer),
    });
    const onObject = () => this.#onEvent(informer);
    informer.on('add', onObject);
    informer.on('update', onObject);
    informer.on('delete', onObject);
    // Not `connect`: the library emits it before it even sends a request, so it proves nothing.
    // Always handled: an informer's error is data here, never an unhandled rejection or a crash.
    informer.on('error', (err) => this.#onError(informer, err));
    this.#informer = informer;
    this.#instance = instance;
    this.#currentListed = false;
    // The old instance's callbacks are ignored from now on (they compare against #informer); stopping
    // it aborts its requests, which it reports as an error we ignore, and ends a list it has in flight.
    previousInstance?.abort(new Error('informer replaced'));
    if (previous) void previous.stop().catch(() => undefined);
  }

  async #list(informer: InformerLike<T>, instance: AbortSignal): Promise<KubernetesListObject<T>> {
    const { listTimeoutMs } = this.bounds;
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new TimeoutError(`list ${this.watchName}`, listTimeoutMs)),
      listTimeoutMs,
    );
    timer.unref();
    const signal = AbortSignal.any([instance, deadline.signal]);
    let result: KubernetesListObject<T>;
    try {
      result = await untilAborted(this.#opts.list(signal), signal);
    } finally {
      clearTimeout(timer);
    }
    // A replaced informer's list must not go on to open a watch that nobody would ever stop.
    if (informer !== this.#informer || this.#closed) throw new Error('informer replaced during its list');
    this.#answered(informer);
    // The informer applies the list to its cache synchronously after this promise settles; look
    // after that, on the next turn of the event loop.
    setImmediate(() => {
      if (informer !== this.#informer || this.#closed) return;
      this.#currentListed = true;
      this.#everListed = true;
      this.#scheduleEmit();
    });
    return result;
  }

  #onEvent(informer: InformerLike<T>): void {
    if (informer !== this.#informer || this.#closed) return;
    this.#answered(informer);
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

  /** The API server answered this informer: it is alive (and, after an outage, back). */
  #answered(informer: InformerLike<T>): void {
    if (informer !== this.#informer || this.#closed) return;
    const now = this.#now();
    this.#lastAnswer = now;
    this.#lastProgress = now;
    // The first answer after the server did not answer at all: it is (re)starting, and may still refuse
    // for a moment (403 until its RBAC caches are loaded, 429 until its watch cache is): retry soon.
    if (this.#unreachable) this.#backoff.reset();
    this.#unreachable = false;
    if (this.#unhealthySince === undefined) return;
    const downMs = now - this.#unhealthySince;
    const failures = this.#outageFailures;
    this.#unhealthySince = undefined;
    this.#reportedLost = false;
    this.#outageFailures = 0;
    this.#opts.logger.info({ watch: this.watchName, downMs, failures }, 'Kubernetes watch recovered');
  }

  #onError(informer: InformerLike<T>, err: unknown): void {
    if (informer !== this.#informer || this.#closed) return;
    const now = this.#now();
    const answered = statusOf(err) !== undefined;
    // Back off from the first step again when this failure starts a new outage (the last one was long
    // ago: the watch worked meanwhile), or when it is the first answer after the server did not answer
    // at all: it is (re)starting, and will serve in a moment.
    const quietMs = this.#opts.backoffMaxMs + this.bounds.stallMs;
    if (now - this.#lastFailureAt > quietMs || (answered && this.#unreachable)) this.#backoff.reset();
    this.#lastFailureAt = now;
    this.#lastProgress = now;
    this.#unreachable = !answered;
    this.#failures++;
    this.#outageFailures++;
    const firstInOutage = this.#unhealthySince === undefined;
    // A deadline means the server has not answered since its last answer: the outage began then.
    this.#unhealthySince ??= err instanceof TimeoutError ? this.#lastAnswer : now;
    this.#logError(err, firstInOutage);
    this.#scheduleRestart(
      err instanceof TimeoutError ? 'timeout' : 'error',
      // Refused with an answer (not 410, which the informer handles with a relist itself): start over
      // from a list rather than retry the same resourceVersion.
      answered,
      answered ? undefined : (this.#opts.unreachableBackoffMaxMs ?? UNREACHABLE_BACKOFF_MAX_MS),
    );
  }

  /** One warning per outage (retries are debug), one error when it outlasts the grace period. */
  #logError(err: unknown, firstInOutage: boolean): void {
    const { logger, syncGraceMs } = this.#opts;
    const { status, message } = describeError(err);
    const downMs = this.#now() - (this.#unhealthySince ?? this.#now());
    const fields = { watch: this.watchName, status, error: message, downMs, failures: this.#outageFailures };
    const refused = status === 401 || status === 403;
    if (firstInOutage) {
      logger.warn(
        fields,
        refused
          ? 'Kubernetes watch refused; retrying, keeping the last known state (an API server that is starting refuses for a moment; if it persists, check the ServiceAccount token and its Role)'
          : 'Kubernetes watch failed; restarting with backoff, keeping the last known state',
      );
    } else if (downMs > syncGraceMs && !this.#reportedLost) {
      logger.error(
        { ...fields, syncGraceMs },
        refused
          ? 'Kubernetes API refusing this watch for longer than the grace period; reporting not synced: check the ServiceAccount token and its Role'
          : 'Kubernetes API lost for longer than the grace period; reporting not synced',
      );
    } else {
      logger.debug(fields, 'Kubernetes watch still failing');
    }
    if (downMs > syncGraceMs) this.#reportedLost = true;
  }

  #checkStall(): void {
    if (this.#closed || this.#restartTimer) return;
    const now = this.#now();
    const quietMs = now - this.#lastProgress;
    if (quietMs < this.bounds.stallMs) return;
    this.#lastProgress = now;
    // Not a word from the API server since its last answer: that is when it was lost.
    const firstInOutage = this.#unhealthySince === undefined;
    this.#unhealthySince ??= this.#lastAnswer;
    this.#outageFailures++;
    this.#opts.logger.warn(
      {
        watch: this.watchName,
        quietMs,
        silentMs: now - this.#lastAnswer,
        stallMs: this.bounds.stallMs,
        firstInOutage,
      },
      'Kubernetes watch stalled (no answer and no error from the API server); replacing it with a fresh informer and a full list',
    );
    this.#scheduleRestart('watchdog', true);
  }

  /**
   * Schedules the one pending restart. A failure while one is already due is covered by it (and makes
   * it a fresh start if it asks for one): a restart is never dropped, and never doubled.
   */
  #scheduleRestart(reason: RestartReason, fresh: boolean, capMs?: number): void {
    if (this.#closed) return;
    if (this.#restartTimer) {
      this.#restartFresh ||= fresh;
      return;
    }
    const delayMs = reason === 'watchdog' ? 0 : this.#backoff.next(capMs);
    this.#restartFresh = fresh;
    this.#opts.metrics.watchRestarts.inc({ watch: this.watchName, reason });
    this.#opts.logger.debug(
      { watch: this.watchName, reason, delayMs, fresh },
      'Kubernetes watch restart scheduled',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      const restartFresh = this.#restartFresh;
      this.#restartFresh = false;
      void this.#run(restartFresh);
    }, delayMs);
  }
}
