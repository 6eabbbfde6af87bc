import type { AppContext } from '../../shared/src/server.js';
import { errorFromResponse, type UpstreamResponse } from '../../shared/src/http-client.js';
import type { HttpError } from '../../shared/src/errors.js';

/** The process that produced an upstream answer: its own X-Served-By, else the endpoint's name. */
export function servedBy(res: UpstreamResponse): string {
  const header = res.headers['x-served-by'];
  return typeof header === 'string' ? header : res.endpoint.name;
}

/** The database an upstream answer was read from (its X-Database), when it names one. */
export function databaseOf(res: UpstreamResponse): { database?: string } {
  const header = res.headers['x-database'];
  return typeof header === 'string' ? { database: header } : {};
}

/** An upstream's error answer as this front's error, still naming the pod that gave it. */
export function relayedError(res: UpstreamResponse): HttpError {
  const err = errorFromResponse(res);
  err.headers['X-Served-By'] = servedBy(res);
  return err;
}

/** Answers with an upstream's status and body; its errors become this front's errors unchanged. */
export function relay(ctx: AppContext, res: UpstreamResponse): void {
  ctx.set('X-Served-By', servedBy(res));
  const { database } = databaseOf(res);
  if (database !== undefined) ctx.set('X-Database', database);
  if (res.status >= 400) throw relayedError(res);
  ctx.status = res.status;
  ctx.body = res.body;
}
