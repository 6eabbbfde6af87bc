import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/**
 * The id that follows one request through the store: the client's own `X-Request-Id` when it is a
 * sane token, else one made up by the first service it reaches. Every answer that is not a front's
 * cache hit carries it back.
 */
export const REQUEST_ID_HEADER = 'X-Request-Id';
const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  return given !== undefined && SANE_ID.test(given) ? given : randomUUID();
}

/**
 * While the log level is `debug` (or `trace`), each request runs in this context: the logger puts its
 * id on every line (logger.ts), the HTTP client on every call to another service (http-client.ts), and
 * so on every invalidation a write pushes. Not at `info`: on Node 20 an AsyncLocalStorage in use costs
 * every promise of the hot paths something, and the feature is for following requests by hand.
 */
const context = new AsyncLocalStorage<string>();

export function currentRequestId(): string | undefined {
  return context.getStore();
}

export function withRequestId<T>(requestId: string, work: () => T): T {
  return context.run(requestId, work);
}
