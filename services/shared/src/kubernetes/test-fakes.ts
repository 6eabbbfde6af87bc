/**
 * In-memory stand-ins for the API server and @kubernetes/client-node's ListWatch, with the 1.4.0
 * behaviour that matters: list then watch, callbacks per object, and on an error: emit `error` and stop.
 * Used by the unit tests beside this file; the API-server tier tests the real thing.
 */
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Logger } from '../logger.js';
import { createMetrics, type Metrics } from '../metrics.js';
import type { InformerLike, InformerSource, ListFn } from './resilient-informer.js';

type ObjectCb<T> = (obj: T) => void;
type ErrorCb = (err?: unknown) => void;

export class FakeApiServer<T extends KubernetesObject> {
  readonly objects = new Map<string, T>();
  down = false;
  lists = 0;
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

  list: ListFn<T> = async () => {
    this.lists++;
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
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
    private readonly listFn: ListFn<T>,
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
