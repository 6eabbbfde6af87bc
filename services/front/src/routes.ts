import type { FrontDeps } from './app.js';
import type { BookReader } from './reads.js';

/** What the front's route groups share: the app's dependencies and the per-app request state. */
export interface FrontRoutes {
  deps: FrontDeps;
  hooks: TestHooks;
  /** GET /info/:id behind the cache, for the Koa route and the fast path alike. */
  books: BookReader;
}

export interface TestHooks {
  /** A delay applied to the next `times` fills of a book, after the upstream answer, before caching. */
  fillDelays: Map<number, { ms: number; times: number }>;
}

export const JSON_TYPE = 'application/json; charset=utf-8';
