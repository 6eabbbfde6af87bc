import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { HttpError } from './errors.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time comparison that does not leak the token's length either (both sides are hashed). */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Koa middleware: requires `Authorization: Bearer <token>` equal to the token `expected()` returns. */
export function requireBearer(realm: 'admin' | 'internal', expected: () => string) {
  return async (ctx: Context, next: Next) => {
    const presented = bearerToken(ctx.get('Authorization') || undefined);
    if (!tokenMatches(presented, expected())) {
      throw new HttpError(401, 'unauthorized', `a valid ${realm} bearer token is required`, {
        'WWW-Authenticate': `Bearer realm="bazar-${realm}"`,
      });
    }
    await next();
  };
}
