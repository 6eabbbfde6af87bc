import type { FrontDeps } from './app.js';

/** What the front's route groups share: the app's dependencies and the per-app request state. */
export interface FrontRoutes {
  deps: FrontDeps;
  /** Requests the fast path already looked up and missed: the route must not look (and count) again. */
  missedOnFastPath: WeakSet<object>;
  hooks: TestHooks;
}

export interface TestHooks {
  /** Delay (ms) applied once to the next fill of a book, after its upstream answer, before caching. */
  fillDelays: Map<number, number>;
}

export const JSON_TYPE = 'application/json; charset=utf-8';
