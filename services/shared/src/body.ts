import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

export const DEFAULT_BODY_LIMIT = 16 * 1024;

/**
 * Reads a JSON body with a hard size limit. Oversized → 413 (checked on Content-Length before reading
 * when it is declared), malformed → 400. Returns undefined for an empty body.
 */
export async function readJsonBody(req: IncomingMessage, limit = DEFAULT_BODY_LIMIT): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    throw new HttpError(413, 'payload_too_large', `request body exceeds ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new HttpError(413, 'payload_too_large', `request body exceeds ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks, size).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
}

/** Requires a JSON object whose keys are all in `allowed`; rejects anything else with 400. */
export function requireObject(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'invalid_body', 'request body must be a JSON object');
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw new HttpError(400, 'invalid_body', `unknown field "${key}" (allowed: ${allowed.join(', ')})`);
    }
  }
  return body as Record<string, unknown>;
}
