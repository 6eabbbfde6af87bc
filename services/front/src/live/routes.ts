import type Router from '@koa/router';
import type { FrontDeps } from '../app.js';
import { LIVE_PREFIX, type LiveFeed } from './feed.js';
import { LIVE_PAGE } from './page.js';

/** What the live page needs of the front beyond FrontDeps. */
export interface LiveDeps {
  feed: LiveFeed;
  /** Every catalog pod's GET /readyz (a replica's says how its standby's replay stands), or its error. */
  catalogPods: () => Promise<Array<{ name: string; readyz?: unknown; error?: string }>>;
  /** The control server of `npm start` (its knobs), when this front runs under it (LIVE_KNOBS_URL). */
  knobsUrl?: string;
}

/** How often a connected page gets the state of the front (its cache, policy, the catalog pods). */
export const SNAPSHOT_INTERVAL_MS = 1000;

/**
 * GET /live: the page; GET /live/config: what the page needs to start; GET /live/events: a Server-Sent
 * Events stream of this front's answers and received invalidations as they happen, and a snapshot of
 * its state every second. Nothing here takes a token or shows one; the knobs go to npm start's control
 * server, from the browser, with the admin token the person types.
 */
export function registerLive(router: Router, deps: FrontDeps, live: LiveDeps): void {
  const page = Buffer.from(LIVE_PAGE);
  router.get(LIVE_PREFIX, (ctx) => {
    ctx.set('Content-Type', 'text/html; charset=utf-8');
    ctx.set('Cache-Control', 'no-store');
    // The page loads nothing from elsewhere; its one script and style are inline.
    ctx.set(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src *",
    );
    ctx.body = page;
  });

  router.get(`${LIVE_PREFIX}/config`, (ctx) => {
    ctx.body = {
      front: deps.podName,
      snapshotIntervalMs: SNAPSHOT_INTERVAL_MS,
      ...(live.knobsUrl ? { knobsUrl: live.knobsUrl } : {}),
    };
  });

  router.get(`${LIVE_PREFIX}/events`, (ctx) => {
    // Written on the response itself, not as a Koa body stream: a page that goes away ends the stream,
    // which is normal here, and Koa would log it as an error (ERR_STREAM_PREMATURE_CLOSE).
    const res = ctx.res;
    ctx.respond = false;
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
    const send = (event: string, data: unknown): void => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const unwatch = live.feed.watch();
    const onRequest = (e: unknown): void => send('request', e);
    const onInvalidation = (e: unknown): void => send('invalidation', e);
    live.feed.on('request', onRequest);
    live.feed.on('invalidation', onInvalidation);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      live.feed.off('request', onRequest);
      live.feed.off('invalidation', onInvalidation);
      unwatch();
      if (!res.writableEnded) res.end();
    };
    const tick = async (): Promise<void> => {
      // A front that shuts down ends its streams, so that they do not hold up its drain.
      if (deps.lifecycle.shuttingDown) return close();
      const state = await snapshot(deps, live);
      if (!closed) send('snapshot', state);
    };
    const timer = setInterval(() => void tick(), SNAPSHOT_INTERVAL_MS);
    res.once('close', close);
    void tick();
  });
}

async function snapshot(deps: FrontDeps, live: LiveDeps): Promise<unknown> {
  const stats = deps.cache.stats();
  return {
    t: Date.now(),
    front: deps.podName,
    policy: deps.policy.current,
    cache: {
      entries: stats.size,
      maxEntries: stats.maxEntries,
      bytes: stats.bytes,
      maxBytes: stats.maxBytes,
      ttlMs: stats.ttlMs,
      hits: stats.hits,
      misses: stats.misses,
      invalidations: stats.invalidations,
      rejectedFills: stats.rejectedFills,
      books: deps.cache.describeBooks(),
    },
    catalogPods: await live.catalogPods(),
  };
}
