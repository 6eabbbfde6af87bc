import { offKoa } from '../../shared/src/server.js';
import type { FrontDeps } from './app.js';
import type { BookReader } from './reads.js';

/** What the front's route groups share: the app's dependencies and the per-app request state. */
export interface FrontRoutes {
  deps: FrontDeps;
  hooks: TestHooks;
  /** GET /info/:id behind the cache, for the Koa route and the fast path alike. */
  books: BookReader;
}

/** A delay applied to the next `times` fills of a book, after the upstream answer, before caching. */
export interface FillDelay {
  ms: number;
  times: number;
}

export interface TestHooks {
  /** By book id. */
  fillDelays: Map<number, FillDelay>;
}

export const JSON_TYPE = 'application/json; charset=utf-8';

/** A front's answers off Koa: the shared contract, with `X-Front` on every one (offKoa adds it). */
export function frontOffKoa(deps: FrontDeps): ReturnType<typeof offKoa> {
  return offKoa({ ...deps, frontName: deps.podName });
}
