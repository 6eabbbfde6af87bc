import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { HttpError } from './errors.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** The expected token's digest, kept while the token stays the same (it is read on every request). */
let expectedDigest: { token: string; digest: Buffer } | undefined;

/** Constant-time comparison that does not leak the token's length either (both sides are hashed). */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  if (expectedDigest?.token !== expected) expectedDigest = { token: expected, digest: digest(expected) };
  return timingSafeEqual(digest(presented), expectedDigest.digest);
}

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Requires `authorization` to be `Bearer <token>` with the token `expected`; else 401. */
export function checkBearer(
  realm: 'admin' | 'internal',
  authorization: string | undefined,
  expected: string,
): void {
  if (!tokenMatches(bearerToken(authorization || undefined), expected)) {
    throw new HttpError(401, 'unauthorized', `a valid ${realm} bearer token is required`, {
      'WWW-Authenticate': `Bearer realm="bazar-${realm}"`,
    });
  }
}

/** Koa middleware: requires `Authorization: Bearer <token>` equal to the token `expected()` returns. */
export function requireBearer(realm: 'admin' | 'internal', expected: () => string) {
  return async (ctx: Context, next: Next) => {
    checkBearer(realm, ctx.get('Authorization'), expected());
    await next();
  };
}
