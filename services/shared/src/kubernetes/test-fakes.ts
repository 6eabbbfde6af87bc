/**
 * In-memory stand-ins for the API server and @kubernetes/client-node's ListWatch, with the 1.4.0
 * behaviour that matters: list then watch, callbacks per object, and on an error: emit `error` and stop.
 * The server can also stop answering without failing (`hang`): lists then wait until aborted and
 * watches until stopped, as against a frozen API server. Used by the unit tests beside this file;
 * list-watch.test.ts runs the real ListWatch over HTTP, and the API-server tier the real thing.
 */
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Logger } from '../logger.js';
import { createMetrics, type Metrics } from '../metrics.js';
import type { InformerLike, InformerSource, ListFn } from './resilient-informer.js';

type ListPromise<T extends KubernetesObject> = () => Promise<KubernetesListObject<T>>;

type ObjectCb<T> = (obj: T) => void;
type ErrorCb = (err?: unknown) => void;

export class FakeApiServer<T extends KubernetesObject> {
  readonly objects = new Map<string, T>();
  down = false;
  /** Requests get no answer at all (and no error): lists wait for their abort signal, watches forever. */
  hang = false;
  /** Requests are refused with this HTTP status (the server answers, with an error). */
  refuse: number | undefined;
  lists = 0;
  /** Lists aborted while waiting for an answer (a list deadline, or an informer replaced). */
  abortedLists = 0;
  #rv = 1;
  readonly watchers = new Set<FakeInformer<T>>();
  readonly informers: FakeInformer<T>[] = [];

  put(obj: T): void {
    const name = obj.metadata?.name ?? '';
    const existed = this.objects.has(name);
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.#rv) } } as T;
    this.objects.set(name, stored);
    for (const w of this.watchers) w.deliver(existed ? 'update' : 'add', stored);
  }

  remove(name: string): void {
    const obj = this.objects.get(name);
    if (!obj) return;
    this.objects.delete(name);
    for (const w of this.watchers) w.deliver('delete', obj);
  }

  /** Every open watch fails (API server gone); with `down`, reconnects and lists fail too. */
  breakWatches(err: Error = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })): void {
    for (const w of [...this.watchers]) w.fail(err);
  }

  list: ListFn<T> = async (signal) => {
    this.lists++;
    if (this.hang) {
      await new Promise<void>((_, reject) =>
        signal.addEventListener('abort', () => {
          this.abortedLists++;
          reject(signal.reason as Error);
        }),
      );
    }
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    if (this.refuse) throw refusal(this.refuse);
    return {
      items: [...this.objects.values()],
      metadata: { resourceVersion: String(this.#rv) },
    } as KubernetesListObject<T>;
  };

  source(): InformerSource<T> {
    return {
      list: this.list,
      create: (list) => {
        const informer = new FakeInformer<T>(this, list);
        this.informers.push(informer);
        return informer;
      },
    };
  }
}

/** An error answer from the API server, shaped like the library's watch errors. */
function refusal(statusCode: number): Error {
  return Object.assign(new Error(`HTTP ${statusCode}`), { statusCode });
}

export class FakeInformer<T extends KubernetesObject> implements InformerLike<T> {
  readonly #cbs: Record<string, Array<ObjectCb<T> | ErrorCb>> = {
    add: [],
    update: [],
    delete: [],
    error: [],
    connect: [],
  };
  #cache = new Map<string, T>();
  #listed = false;
  starts = 0;
  stopped = false;

  constructor(
    private readonly server: FakeApiServer<T>,
    private readonly listFn: ListPromise<T>,
  ) {}

  on(verb: 'add' | 'update' | 'delete', cb: ObjectCb<T>): void;
  on(verb: 'error' | 'connect', cb: ErrorCb): void;
  on(verb: string, cb: ObjectCb<T> | ErrorCb): void {
    this.#cbs[verb]?.push(cb);
  }

  async start(): Promise<void> {
    this.starts++;
    this.stopped = false;
    this.#fire('connect', undefined);
    const resumed = this.#listed;
    if (!this.#listed) {
      let list: KubernetesListObject<T>;
      try {
        list = await this.listFn();
      } catch (err) {
        this.#fire('error', err);
        return;
      }
      this.#applyList(list.items);
      this.#listed = true;
    }
    if (this.server.down) {
      this.#fire('error', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
      return;
    }
    if (this.server.refuse) {
      this.#fire('error', refusal(this.server.refuse));
      return;
    }
    // A watch request that gets no response: start() never settles (a real one would, at its deadline).
    if (this.server.hang) await new Promise(() => undefined);
    // Resuming from its resourceVersion, a real watch replays what happened meanwhile.
    if (resumed) this.#applyList([...this.server.objects.values()]);
    this.server.watchers.add(this);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.server.watchers.delete(this);
    // Like the real one: aborting the request surfaces as an error callback.
    this.#fire('error', Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
  }

  list(): ReadonlyArray<T> {
    return [...this.#cache.values()];
  }

  deliver(verb: 'add' | 'update' | 'delete', obj: T): void {
    const name = obj.metadata?.name ?? '';
    if (verb === 'delete') this.#cache.delete(name);
    else this.#cache.set(name, obj);
    this.#fire(verb, obj);
  }

  fail(err: Error): void {
    this.server.watchers.delete(this);
    this.#fire('error', err);
  }

  #applyList(items: T[]): void {
    const names = new Set(items.map((o) => o.metadata?.name ?? ''));
    for (const [name, obj] of this.#cache) {
      if (!names.has(name)) {
        this.#cache.delete(name);
        this.#fire('delete', obj);
      }
    }
    for (const obj of items) {
      const name = obj.metadata?.name ?? '';
      const known = this.#cache.has(name);
      this.#cache.set(name, obj);
      this.#fire(known ? 'update' : 'add', obj);
    }
  }

  #fire(verb: string, arg: unknown): void {
    for (const cb of this.#cbs[verb] ?? []) (cb as (a: unknown) => void)(arg);
  }
}

/** A logger that keeps records in memory so tests can assert what was said. */
export function memoryLogger(): {
  logger: Logger;
  records: Array<{ level: number; msg: string } & Record<string, unknown>>;
} {
  const records: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        records.push(JSON.parse(line) as { level: number; msg: string } & Record<string, unknown>);
      },
    },
  );
  return { logger, records };
}

export function testMetrics(): Metrics {
  return createMetrics({ service: 'test', podName: 'test-0', defaultMetrics: false });
}

export async function until(check: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
