import http from 'node:http';
import https from 'node:https';
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type ListPromise,
} from '@kubernetes/client-node';
import { TimeoutError } from './client.js';

/**
 * How long a watch may go without hearing from the API server, and the request deadlines that follow
 * from it. A request to an API server that stopped answering without closing its connections (a frozen
 * process, a node that died, a partition, a load balancer still holding the old connection) would
 * otherwise wait forever: @kubernetes/client-node 1.4.0 puts no timeout on its list and watch
 * requests (its watch builds a 30 s timeout signal and then overwrites it), and asks the server for
 * none either, so a watch lasts 30-60 min on the server's default.
 */
export interface WatchBounds {
  /** The watchdog: no answer from the API server and no failure for this long means stuck: start over. */
  stallMs: number;
  /**
   * Asked of the server with every watch (`timeoutSeconds`): it ends the watch after this long, and the
   * informer opens the next one. A healthy watch therefore hears from the server at least this often,
   * even on a resource that never changes; that is what makes `stallMs` safe to keep short.
   */
  timeoutSeconds: number;
  /** A watch whose response (status and headers) has not arrived after this long fails. */
  responseTimeoutMs: number;
  /** A list that has not completed after this long fails (the request is aborted). */
  listTimeoutMs: number;
}

/** The watchdog's bound never exceeds this, whatever KUBE_WATCH_IDLE_RESTART_MS says. */
export const MAX_STALL_MS = 30_000;
const MAX_RESPONSE_TIMEOUT_MS = 5_000;
const MAX_LIST_TIMEOUT_MS = 10_000;
const MIN_REQUEST_TIMEOUT_MS = 1_000;

/**
 * The bounds for a watchdog of `idleRestartMs` (KUBE_WATCH_IDLE_RESTART_MS), capped at MAX_STALL_MS. With
 * the default (and any value from 30 s up): each watch ends on the server after 10 s, its response must
 * come within 5 s, a list within 10 s, and a watch that heard nothing for 30 s (no answer, no failure)
 * is replaced. A watch still open 15 s after it began is dead (the server should have ended it at 10 s).
 */
export function watchBounds(idleRestartMs: number): WatchBounds {
  const stallMs = Math.min(Math.max(idleRestartMs, MIN_REQUEST_TIMEOUT_MS), MAX_STALL_MS);
  const timeoutSeconds = Math.max(1, Math.floor(stallMs / 3000));
  const clamp = (ms: number, max: number) => Math.round(Math.min(max, Math.max(MIN_REQUEST_TIMEOUT_MS, ms)));
  const responseTimeoutMs = clamp(stallMs / 4, MAX_RESPONSE_TIMEOUT_MS);
  const listTimeoutMs = clamp(stallMs / 2, MAX_LIST_TIMEOUT_MS);
  return {
    // A healthy watch must never look stalled: it hears from the server at least every timeoutSeconds
    // (plus one response time), and a list ends within listTimeoutMs.
    stallMs: Math.max(stallMs, timeoutSeconds * 1000 + responseTimeoutMs + 1000, listTimeoutMs + 1000),
    timeoutSeconds,
    responseTimeoutMs,
    listTimeoutMs,
  };
}

/** How long a watch may stay open: the server ends it after timeoutSeconds; past that it is dead. */
export function watchLifetimeMs(bounds: Pick<WatchBounds, 'timeoutSeconds' | 'responseTimeoutMs'>): number {
  return bounds.timeoutSeconds * 1000 + bounds.responseTimeoutMs;
}

type WatchArgs = Parameters<Watch['watch']>;

/** An API error with the HTTP status the informer and our logs look at (`statusCode`, like the library's). */
function statusError(statusCode: number, body: unknown, fallback: string): Error {
  const message =
    typeof (body as { message?: unknown } | null)?.message === 'string'
      ? (body as { message: string }).message
      : fallback;
  return Object.assign(new Error(message), { statusCode, body });
}

/**
 * A drop-in for the library's Watch (what its ListWatch informer uses) whose requests always end:
 *  - every watch asks the server for `timeoutSeconds` and for bookmarks (so a quiet watch keeps a fresh
 *    resourceVersion and resumes without a relist),
 *  - no response within `responseTimeoutMs`, or still open `timeoutSeconds + responseTimeoutMs` after it
 *    began: the request is aborted and `done` gets a TimeoutError,
 *  - an `ERROR` event other than 410 Gone ends the watch with that error (the library ignores it and
 *    reconnects at once with the same resourceVersion, in a loop without backoff),
 *  - a connection that closes before the end of the stream is an error, not a clean end,
 *  - failures to even build the request reach `done` (the library's watch() rejects instead: on the
 *    informer's own reconnect nobody awaits it, so that was an unhandled rejection and a silent stop),
 *  - `onAnswer` hears every sign of life from the server (a response, an event or bookmark, a clean end),
 *  - close() aborts every request still open and fails any later one, so a replaced informer cannot
 *    leave a watch behind.
 * Like the library's, watch() resolves with the request's AbortController once the server answered (or
 * the request failed); that is when the informer's start() resolves.
 */
export class BoundedWatch extends Watch {
  readonly #bounds: Pick<WatchBounds, 'timeoutSeconds' | 'responseTimeoutMs'>;
  readonly #onAnswer: () => void;
  readonly #open = new Set<AbortController>();
  #closed = false;

  constructor(
    config: KubeConfig,
    bounds: Pick<WatchBounds, 'timeoutSeconds' | 'responseTimeoutMs'>,
    onAnswer: () => void = () => undefined,
  ) {
    super(config);
    this.#bounds = bounds;
    this.#onAnswer = onAnswer;
  }

  /** Aborts every open request; later ones fail at once. */
  close(): void {
    this.#closed = true;
    for (const controller of [...this.#open]) controller.abort();
  }

  override async watch(...[path, queryParams, callback, done]: WatchArgs): Promise<AbortController> {
    const controller = new AbortController();
    const timers: NodeJS.Timeout[] = [];
    let finished = false;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      for (const timer of timers) clearTimeout(timer);
      this.#open.delete(controller);
      controller.abort(); // Ends the request and its response if they are still open.
      done(err);
    };
    if (this.#closed) {
      finish(new Error('watch closed: its informer was stopped'));
      return controller;
    }
    this.#open.add(controller);
    // Aborted from outside (the informer's stop(), or close()): like the library, report it to done.
    controller.signal.addEventListener('abort', () =>
      finish(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' })),
    );
    const { timeoutSeconds, responseTimeoutMs } = this.#bounds;
    const lifetimeMs = watchLifetimeMs(this.#bounds);
    timers.push(
      setTimeout(() => finish(new TimeoutError(`watch ${path}`, responseTimeoutMs)), responseTimeoutMs),
      setTimeout(
        () =>
          finish(
            new TimeoutError(
              `watch ${path} (asked to end after ${timeoutSeconds} s)`,
              lifetimeMs,
              'did not end',
            ),
          ),
        lifetimeMs,
      ),
    );
    for (const timer of timers) timer.unref();

    let url: URL;
    const options: https.RequestOptions = {};
    try {
      const cluster = this.config.getCurrentCluster();
      if (!cluster) throw new Error('No currently active cluster');
      url = new URL(cluster.server + path);
      url.searchParams.set('watch', 'true');
      for (const [key, value] of Object.entries(queryParams ?? {})) {
        if (value !== undefined) url.searchParams.set(key, String(value));
      }
      url.searchParams.set('timeoutSeconds', String(timeoutSeconds));
      url.searchParams.set('allowWatchBookmarks', 'true');
      // The library's own TLS, proxy and credential handling (a fresh agent per request, no pooled
      // keep-alive socket to a previous API server).
      await this.config.applyToHTTPSOptions(options);
    } catch (err) {
      finish(err);
      return controller;
    }
    if (finished) return controller;

    return new Promise<AbortController>((resolve) => {
      const fail = (err: unknown) => {
        finish(err);
        resolve(controller);
      };
      const request = (url.protocol === 'http:' ? http : https).request(url, {
        method: 'GET',
        ...(options.agent !== undefined ? { agent: options.agent } : {}),
        ...(options.auth ? { auth: options.auth } : {}),
        headers: { ...(options.headers as http.OutgoingHttpHeaders | undefined), accept: 'application/json' },
        signal: controller.signal,
      });
      request.on('error', fail);
      request.on('response', (response) => {
        const [responseTimer] = timers;
        clearTimeout(responseTimer);
        response.setEncoding('utf8');
        response.on('error', fail);
        if (response.statusCode !== 200) {
          let body = '';
          response.on('data', (chunk: string) => {
            if (body.length < 65_536) body += chunk;
          });
          response.on('end', () => {
            let parsed: unknown = body;
            try {
              parsed = JSON.parse(body);
            } catch {
              // Not a Status object: keep the text.
            }
            const code = response.statusCode ?? 500;
            fail(statusError(code, parsed, http.STATUS_CODES[code] ?? `HTTP ${code}`));
          });
          return;
        }
        this.#onAnswer();
        resolve(controller);
        let buffered = '';
        let streamError: Error | undefined;
        let ended = false;
        const line = (text: string) => {
          if (!text.trim()) return;
          this.#onAnswer();
          let data: { type?: unknown; object?: unknown };
          try {
            data = JSON.parse(text) as { type?: unknown; object?: unknown };
          } catch {
            return; // Like the library: a line that does not parse is skipped.
          }
          if (data.type === 'ERROR') {
            const status = data.object as { code?: unknown } | undefined;
            const code = typeof status?.code === 'number' ? status.code : 500;
            // 410 Gone: the informer clears its resourceVersion and relists when the stream ends.
            if (code !== 410) streamError = statusError(code, status, 'watch ERROR event');
          }
          callback(String(data.type), data.object, data);
        };
        response.on('data', (chunk: string) => {
          buffered += chunk;
          let newline = buffered.indexOf('\n');
          while (newline >= 0) {
            line(buffered.slice(0, newline));
            buffered = buffered.slice(newline + 1);
            newline = buffered.indexOf('\n');
          }
        });
        response.on('end', () => {
          ended = true;
          line(buffered);
          // The server ended the watch (its timeoutSeconds, or a restart): the informer reconnects.
          finish(streamError ?? null);
        });
        response.on('close', () => {
          if (!ended)
            finish(streamError ?? new Error('watch connection closed before the end of the stream'));
        });
      });
      request.end();
    });
  }
}

/**
 * The library's ListWatch informer on a BoundedWatch: stopping it also aborts a watch request still
 * waiting for its response (the library can abort a request only once its response arrived).
 */
export class BoundedListWatch<T extends KubernetesObject> extends ListWatch<T> {
  readonly #watch: BoundedWatch;

  constructor(
    path: string,
    watch: BoundedWatch,
    list: ListPromise<T>,
    selectors: { labelSelector?: string; fieldSelector?: string } = {},
  ) {
    super(path, watch, list, false, selectors.labelSelector, selectors.fieldSelector);
    this.#watch = watch;
  }

  override async stop(): Promise<void> {
    this.#watch.close();
    await super.stop();
  }
}
