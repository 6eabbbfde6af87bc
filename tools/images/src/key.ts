/**
 * Cache keys. An image's key is the sha256 of a canonical JSON document listing exactly what the
 * image is built from (source digests, package lists, suite, build arguments, the keys of the images
 * it is built on, and the recipe version). Equal inputs give equal keys on any machine; any change
 * to an input changes the key, and with it the archive name (and the service images' tag).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';

export type KeyValue = string | number | boolean | null | KeyValue[] | { [k: string]: KeyValue };

/** JSON with object keys sorted at every level, so that key order never changes a digest. */
export function canonicalJson(value: KeyValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function cacheKey(inputs: { [k: string]: KeyValue }): string {
  return sha256(canonicalJson(inputs));
}

export async function fileSha256(file: string): Promise<string> {
  return sha256(await fs.readFile(file));
}

/** The first characters of a key, enough to tell archives apart in a directory listing. */
export function shortKey(key: string): string {
  return key.slice(0, 12);
}
