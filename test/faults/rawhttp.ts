/**
 * A raw HTTP/1.1 client over node:net: sends exactly the bytes a test composes (any path, any header
 * value, bodies with a false Content-Length, dribbled bytes), which fetch and http.request refuse to.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface RawRequest {
  method: string;
  path: string;
  headers?: [string, string][];
  body?: Buffer | string;
  /** Send the body with Transfer-Encoding: chunked instead of Content-Length. */
  chunked?: boolean;
  /** Declared Content-Length (default: the body's length). */
  contentLength?: number;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Parsed JSON body, when it is JSON. */
  json: unknown;
  ms: number;
}

export function encodeRequest(req: RawRequest): Buffer {
  const body = req.body === undefined ? undefined : Buffer.from(req.body as string);
  const lines = [`${req.method} ${req.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of req.headers ?? []) lines.push(`${name}: ${value}`);
  if (body !== undefined && req.chunked) lines.push('Transfer-Encoding: chunked');
  else if (body !== undefined || req.contentLength !== undefined) {
    lines.push(`Content-Length: ${req.contentLength ?? body?.length ?? 0}`);
  }
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  if (body === undefined) return head;
  if (!req.chunked) return Buffer.concat([head, body]);
  const chunks: Buffer[] = [head];
  for (let i = 0; i < body.length; i += 8192) {
    const part = body.subarray(i, i + 8192);
    chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(chunks);
}

/** Sends one request on a fresh connection and reads the answer until the server closes. */
export function rawRequest(port: number, req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        resolve({ ...parseResponse(Buffer.concat(chunks)), ms: performance.now() - start });
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms to ${req.method} ${req.path}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', finish);
    socket.on('close', finish);
    // The server may answer (413, 401) and close before it has read everything we send.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (chunks.length > 0 && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) finish();
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.write(encodeRequest(req));
  });
}

export function parseResponse(data: Buffer): Omit<RawResponse, 'ms'> {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`incomplete HTTP answer: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) throw new Error(`not an HTTP answer: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = data.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  const bodyText = body.toString('utf8');
  let json: unknown;
  try {
    json = bodyText === '' ? undefined : JSON.parse(bodyText);
  } catch {
    json = undefined;
  }
  return { status: Number(m[1]), headers, body: bodyText, json };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < data.length) {
    const eol = data.indexOf('\r\n', pos);
    if (eol < 0) break;
    const size = parseInt(data.subarray(pos, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(data.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
