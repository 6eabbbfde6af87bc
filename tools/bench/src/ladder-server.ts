/**
 * One rung of the cached-read ladder (ladder.ts): a server answering GET /info/1 with the same JSON
 * bytes as the bench's bare baseline, with one more piece of a real front each rung (LADDER_RUNG), and
 * everything of the rungs below:
 *
 *   bare            the baseline's server (bare-server.ts) in a process of its own (checks the method)
 *   got-loaded      got loaded through the product's http-client module
 *   got-used        got calls made before serving, as a front makes for misses and reconciliation
 *   front-process   a front's whole Koa app built in the process (still the bare handler serving)
 *   hit-path        the front's app itself serving the hits (its cache filled directly)
 *
 * Started by the ladder (fork); reports its port over IPC and exits when the ladder goes away.
 */
import type { AddressInfo } from 'node:net';
import { listenBare } from './bare-server.js';
import { RUNGS, type ServerRung } from './ladder-rungs.js';

/** got calls made before serving from the got-used rung up: each a GET and a POST with a JSON body. */
const GOT_CALLS = 200;

const body = Buffer.from(process.env['LADDER_BODY'] ?? '{}');
const rung = process.env['LADDER_RUNG'] as ServerRung;

async function frontApp() {
  const { createLogger } = await import('../../../services/shared/src/logger.js');
  const { createMetrics } = await import('../../../services/shared/src/metrics.js');
  const { policyFromConfig } = await import('../../../services/shared/src/service-config.js');
  const { Lifecycle } = await import('../../../services/shared/src/server.js');
  const { createApp } = await import('../../../services/front/src/app.js');
  const { FrontCache } = await import('../../../services/front/src/cache.js');
  type Deps = Parameters<typeof createApp>[0];
  const cache = new FrontCache({ maxEntries: 10_000, ttlMs: 3_600_000 });
  cache.offerBook(1, { body, version: 1, servedBy: 'catalog-ladder' });
  const none = { request: () => Promise.reject(new Error('no upstream on the ladder')) };
  const deps: Deps = {
    podName: 'front-ladder',
    logger: createLogger({ name: 'front-ladder', level: 'warn' }),
    metrics: createMetrics({ service: 'front', podName: 'front-ladder' }),
    lifecycle: new Lifecycle(),
    policy: policyFromConfig({
      LOAD_BALANCING: 'round-robin',
      CONSISTENCY_MODE: 'strict',
      INVALIDATION_TIMEOUT_MS: 1000,
    }),
    cache,
    catalog: none as unknown as Deps['catalog'],
    order: none as unknown as Deps['order'],
    adminToken: () => 'ladder-admin-token',
    internalToken: () => 'ladder-internal-token',
    testHooks: false,
    readiness: async () => ({}),
  };
  return createApp(deps);
}

/** Calls the server through got as a front calls its upstreams (a GET, a POST with a JSON body). */
async function gotCalls(url: string, n: number): Promise<void> {
  const { createHttpClient } = await import('../../../services/shared/src/http-client.js');
  const client = createHttpClient({ timeoutMs: 2000 });
  for (let i = 0; i < n; i++) {
    await client.get(`${url}/livez`).text();
    await client.post(`${url}/livez`, { json: { ids: [1, 2, 3] }, throwHttpErrors: false }).text();
  }
}

async function main(): Promise<void> {
  const level = RUNGS.indexOf(rung);
  if (level < 0) throw new Error(`LADDER_RUNG must be one of ${RUNGS.join(', ')}`);
  const has = (r: ServerRung) => level >= RUNGS.indexOf(r);
  if (has('got-loaded')) await import('../../../services/shared/src/http-client.js');
  const app = has('front-process') ? await frontApp() : undefined;
  let port: number;
  if (app && has('hit-path')) {
    // As a front listens (server.ts), with the services' default request and header timeouts.
    const { listen } = await import('../../../services/shared/src/server.js');
    const timeouts = { HTTP_REQUEST_TIMEOUT_MS: 15_000, HTTP_HEADERS_TIMEOUT_MS: 10_000 };
    const server = await listen(app, { HOST: '127.0.0.1', PORT: 0, ...timeouts });
    port = (server.address() as AddressInfo).port;
  } else {
    port = await listenBare(body);
  }
  if (has('got-used')) await gotCalls(`http://127.0.0.1:${port}`, GOT_CALLS);
  process.send?.({ port });
}

process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
main().catch((err: unknown) => {
  process.stderr.write(`ladder server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
