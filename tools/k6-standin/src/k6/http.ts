/**
 * Stand-in for `k6/http`: the verbs with k6's argument order, params (headers, tags, timeout,
 * responseCallback, redirects, responseType), Response objects with canonical header names and json(),
 * and the http_req_* metrics with k6's tags. Anything outside that subset is refused loudly.
 */
import { URL } from 'node:url';
import { TextDecoder, TextEncoder } from 'node:util';
import { K6Error, runtime, toTags } from '../runtime.js';
import type { HttpResponseMessage } from '../protocol.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const EXPECTED = Symbol('k6.expectedStatuses');

interface ExpectedStatuses {
  [EXPECTED]: Array<{ min: number; max: number }>;
}

/** http.expectedStatuses(200, 409, { min: 500, max: 599 }) */
export function expectedStatuses(
  ...statuses: Array<number | { min: number; max: number }>
): ExpectedStatuses {
  if (statuses.length === 0) throw new K6Error('expectedStatuses(): give at least one status or range');
  const ranges = statuses.map((s) => {
    if (typeof s === 'number' && Number.isInteger(s)) return { min: s, max: s };
    if (typeof s === 'object' && s !== null && Number.isInteger(s.min) && Number.isInteger(s.max)) {
      return { min: s.min, max: s.max };
    }
    throw new K6Error(`expectedStatuses(): ${JSON.stringify(s)} is not a status or a {min, max} range`);
  });
  return Object.freeze({ [EXPECTED]: ranges });
}

let defaultCallback: ExpectedStatuses | null = expectedStatuses({ min: 200, max: 399 });

export function setResponseCallback(cb: ExpectedStatuses | null): void {
  if (cb !== null && !isCallback(cb)) {
    throw new K6Error('setResponseCallback(): pass http.expectedStatuses(...) or null');
  }
  defaultCallback = cb;
}

function isCallback(cb: unknown): cb is ExpectedStatuses {
  return typeof cb === 'object' && cb !== null && EXPECTED in cb;
}

const PARAM_KEYS = new Set([
  'headers',
  'tags',
  'timeout',
  'responseCallback',
  'redirects',
  'responseType',
  'auth',
  'compression',
  'cookies',
  'jar',
]);
const UNSUPPORTED_PARAMS = new Set(['auth', 'compression', 'cookies', 'jar']);

/** k6 durations: a number of milliseconds or a string such as "500ms", "10s", "1m30s". */
export function parseDuration(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h)/gy;
    const unit: Record<string, number> = {
      h: 3_600_000,
      m: 60_000,
      s: 1000,
      ms: 1,
      us: 1e-3,
      µs: 1e-3,
      ns: 1e-6,
    };
    let total = 0;
    let matched = 0;
    for (let m = re.exec(value); m; m = re.exec(value)) {
      total += Number(m[1]) * (unit[m[2] as string] as number);
      matched = re.lastIndex;
    }
    if (matched === value.length && value.length > 0) return total;
  }
  throw new K6Error(`${what}: ${JSON.stringify(value)} is not a k6 duration (e.g. "10s", "500ms", 1000)`);
}

function canonical(name: string): string {
  return name
    .toLowerCase()
    .split('-')
    .map((part) => (part === '' ? part : part[0]!.toUpperCase() + part.slice(1)))
    .join('-');
}

interface Params {
  headers: Record<string, string>;
  tags: Record<string, string>;
  timeoutMs: number;
  callback: ExpectedStatuses | null;
  redirects: number;
  responseType: 'text' | 'binary' | 'none';
}

function readParams(raw: unknown, what: string): Params {
  const p: Params = {
    headers: {},
    tags: {},
    timeoutMs: 60_000,
    callback: defaultCallback,
    redirects: 10,
    responseType: runtime.discardResponseBodies ? 'none' : 'text',
  };
  if (raw === undefined || raw === null) return p;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new K6Error(`${what}: params must be an object`);
  const params = raw as Record<string, unknown>;
  for (const key of Object.keys(params)) {
    if (!PARAM_KEYS.has(key)) throw new K6Error(`${what}: "${key}" is not a k6 request parameter`);
    if (UNSUPPORTED_PARAMS.has(key))
      throw new K6Error(`${what}: the stand-in does not implement params.${key}`);
  }
  if (params.headers !== undefined) {
    if (typeof params.headers !== 'object' || params.headers === null) {
      throw new K6Error(`${what}: params.headers must be an object`);
    }
    for (const [k, v] of Object.entries(params.headers as Record<string, unknown>)) {
      if (typeof v !== 'string' && typeof v !== 'number')
        throw new K6Error(`${what}: header ${k} must be a string`);
      p.headers[k] = String(v);
    }
  }
  p.tags = toTags(params.tags, what);
  if (params.timeout !== undefined) p.timeoutMs = parseDuration(params.timeout, `${what} params.timeout`);
  if (params.responseCallback !== undefined) {
    if (params.responseCallback !== null && !isCallback(params.responseCallback)) {
      throw new K6Error(`${what}: params.responseCallback must come from http.expectedStatuses() or be null`);
    }
    p.callback = params.responseCallback as ExpectedStatuses | null;
  }
  if (params.redirects !== undefined) {
    if (!Number.isInteger(params.redirects) || (params.redirects as number) < 0) {
      throw new K6Error(`${what}: params.redirects must be a non-negative integer`);
    }
    p.redirects = params.redirects as number;
  }
  if (params.responseType !== undefined) {
    if (
      params.responseType !== 'text' &&
      params.responseType !== 'binary' &&
      params.responseType !== 'none'
    ) {
      throw new K6Error(`${what}: params.responseType must be text, binary or none`);
    }
    p.responseType = params.responseType;
  }
  return p;
}

/** k6 sends a string body as is and form-encodes an object body; null/undefined means no body. */
function encodeBody(body: unknown, headers: Record<string, string>, what: string): Uint8Array | null {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (typeof body === 'object' && !Array.isArray(body)) {
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const form = Object.entries(body as Record<string, unknown>)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    return encoder.encode(form);
  }
  throw new K6Error(`${what}: body must be a string, an object or an ArrayBuffer`);
}

export interface K6Response {
  status: number;
  status_text: string;
  url: string;
  proto: string;
  headers: Record<string, string>;
  body: string | ArrayBuffer | null;
  timings: {
    duration: number;
    blocked: number;
    connecting: number;
    tls_handshaking: number;
    sending: number;
    waiting: number;
    receiving: number;
  };
  error: string;
  error_code: number;
  remote_ip: string;
  remote_port: number;
  request: { method: string; url: string; headers: Record<string, string[]>; body: string; cookies: object };
  cookies: object;
  json(selector?: string): unknown;
}

function select(value: unknown, selector: string): unknown {
  // The gjson subset a k6 script most often uses: dotted keys and array indexes ("books.0.id").
  let cur = value;
  for (const part of selector.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function request(method: string, url: string, body?: unknown, rawParams?: unknown): K6Response {
  const what = `http.request(${method}, ${String(url)})`;
  runtime.requireVuContext(`HTTP ${method}`);
  if (typeof method !== 'string' || method === '')
    throw new K6Error('http.request(): method must be a string');
  if (typeof url !== 'string') throw new K6Error(`${what}: the URL must be a string`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new K6Error(`${what}: "${url}" is not an absolute URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new K6Error(`${what}: only http(s) URLs are supported`);
  }
  const params = readParams(rawParams, what);
  const headers = { 'User-Agent': 'k6-standin (bazar)', ...params.headers };
  const bytes = encodeBody(body, headers, what);
  const upper = method.toUpperCase();
  const res: HttpResponseMessage = runtime.http({
    method: upper,
    url,
    headers,
    body: bytes,
    timeoutMs: params.timeoutMs,
    redirects: params.redirects,
  });

  const resHeaders: Record<string, string> = {};
  for (const [name, value] of res.headers) {
    const key = canonical(name);
    resHeaders[key] = resHeaders[key] === undefined ? value : `${resHeaders[key]}, ${value}`;
  }
  const text = decoder.decode(res.body);
  const expected =
    params.callback === null
      ? true
      : res.status !== 0 && params.callback[EXPECTED].some((r) => res.status >= r.min && res.status <= r.max);

  const tags: Record<string, string> = {
    ...runtime.baseTags(),
    method: upper,
    url,
    name: url,
    status: String(res.status),
    proto: res.proto,
    ...params.tags,
  };
  if (params.callback !== null) tags.expected_response = String(expected);
  if (res.errorCode !== 0) tags.error_code = String(res.errorCode);
  const t = res.timings;
  runtime.addSample('http_reqs', 1, tags);
  runtime.addSample('http_req_duration', t.duration, tags);
  runtime.addSample('http_req_blocked', t.blocked, tags);
  runtime.addSample('http_req_connecting', 0, tags);
  runtime.addSample('http_req_tls_handshaking', 0, tags);
  runtime.addSample('http_req_sending', t.sending, tags);
  runtime.addSample('http_req_waiting', t.waiting, tags);
  runtime.addSample('http_req_receiving', t.receiving, tags);
  if (params.callback !== null) runtime.addSample('http_req_failed', expected ? 0 : 1, tags);
  runtime.addSample('data_sent', res.bytesSent, tags);
  runtime.addSample('data_received', res.body.byteLength, tags);
  runtime.requests.push({
    phase: runtime.phase,
    method: upper,
    url,
    status: res.status,
    expected,
    tags,
    error: res.error,
    durationMs: t.duration,
  });

  let responseBody: string | ArrayBuffer | null = text;
  if (params.responseType === 'none') responseBody = null;
  else if (params.responseType === 'binary') responseBody = res.body.slice().buffer;

  const requestHeaders: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers)) requestHeaders[canonical(k)] = [v];
  return {
    status: res.status,
    status_text: res.statusText,
    url: res.url,
    proto: res.proto,
    headers: resHeaders,
    body: responseBody,
    timings: {
      duration: t.duration,
      blocked: t.blocked,
      connecting: 0,
      tls_handshaking: 0,
      sending: t.sending,
      waiting: t.waiting,
      receiving: t.receiving,
    },
    error: res.error,
    error_code: res.errorCode,
    remote_ip: res.remoteIp,
    remote_port: res.remotePort,
    request: {
      method: upper,
      url,
      headers: requestHeaders,
      body: bytes ? decoder.decode(bytes) : '',
      cookies: {},
    },
    cookies: {},
    json(selector?: string): unknown {
      if (typeof responseBody !== 'string') {
        throw new K6Error('json(): the response body is empty (responseType none or binary)');
      }
      let value: unknown;
      try {
        value = JSON.parse(responseBody);
      } catch {
        throw new K6Error(`json(): the body of ${upper} ${url} is not JSON: ${responseBody.slice(0, 80)}`);
      }
      return selector === undefined ? value : select(value, selector);
    },
  };
}

function noBody(method: string) {
  return (url: string, params?: unknown): K6Response => request(method, url, null, params);
}

function withBody(method: string) {
  return (url: string, body?: unknown, params?: unknown): K6Response => request(method, url, body, params);
}

export const get = noBody('GET');
export const head = noBody('HEAD');
export const post = withBody('POST');
export const put = withBody('PUT');
export const patch = withBody('PATCH');
export const del = withBody('DELETE');
export const options = withBody('OPTIONS');

export default {
  get,
  head,
  post,
  put,
  patch,
  del,
  options,
  request,
  expectedStatuses,
  setResponseCallback,
};
