import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

export const DEFAULT_BODY_LIMIT = 16 * 1024;

/** The one media type a body may have (RFC 8259: JSON is UTF-8, so a charset parameter changes nothing). */
const JSON_MEDIA_TYPE = 'application/json';

/**
 * Reads a JSON body with a hard size limit. Oversized → 413 (checked on Content-Length before reading
 * when it is declared), not `application/json` → 415 (see below), malformed → 400. Returns undefined
 * for an empty body.
 *
 * A non-empty body must be sent as `Content-Type: application/json` (the media type compared
 * case-insensitively, parameters such as `; charset=utf-8` allowed); any other type, or none, is 415
 * `unsupported_media_type`. An empty body needs no Content-Type (a purchase takes none). The type is
 * checked before any byte is read: a declared Content-Length above 0 is refused at once, a chunked body
 * at its first byte (it may turn out empty), and the rest of the body is drained, as on a 413.
 */
export async function readJsonBody(req: IncomingMessage, limit = DEFAULT_BODY_LIMIT): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  const contentType = req.headers['content-type'];
  const json = isJsonMediaType(contentType);
  if (!json && declared !== undefined && Number(declared) > 0) {
    req.resume();
    throw unsupportedMediaType(contentType);
  }
  const raw = await readRaw(req, limit, json ? undefined : () => unsupportedMediaType(contentType));
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
}

/** True when a Content-Type header names application/json, whatever its case and parameters. */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semicolon = contentType.indexOf(';');
  const type = (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim();
  return type.toLowerCase() === JSON_MEDIA_TYPE;
}

function unsupportedMediaType(contentType: string | undefined): HttpError {
  return new HttpError(
    415,
    'unsupported_media_type',
    contentType === undefined || contentType.trim() === ''
      ? 'a request body needs Content-Type: application/json'
      : 'request body must be sent as Content-Type: application/json',
  );
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'payload_too_large', `request body exceeds ${limit} bytes`);
}

/**
 * The body's bytes, up to `limit` (events, not an async iterator: this runs on every write). With
 * `refuse`, the body must be empty: its first byte rejects with `refuse()` and the rest is drained.
 */
function readRaw(req: IncomingMessage, limit: number, refuse?: () => HttpError): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      size += chunk.length;
      if (refuse || size > limit) {
        cleanup();
        req.resume();
        reject(refuse ? refuse() : tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => onError(new Error('request aborted'));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('aborted', onAborted);
  });
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
