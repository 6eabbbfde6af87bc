/** Small HTTP helpers for the tier: service calls, /metrics reads, and raw API-server reads. */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { LocalApiServer } from './control-plane.js';

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
}

export async function call(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; json?: unknown; timeoutMs?: number } = {},
): Promise<Reply> {
  const res = await fetch(url, {
    method: opts.method ?? 'GET',
    headers: { ...(opts.json !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    ...(opts.json !== undefined ? { body: JSON.stringify(opts.json) } : {}),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (metrics): keep the text.
  }
  return { status: res.status, headers: res.headers, body };
}

/** Sums the samples of `name` whose labels include all of `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (matches) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function metric(
  baseUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const reply = await call(`${baseUrl}/metrics`);
  return metricValue(String(reply.body), name, labels);
}

/** A GET on the API server as admin with a chosen Accept header (e.g. the Table view kubectl uses). */
export function apiGet(
  server: LocalApiServer,
  path: string,
  accept = 'application/json',
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${server.url}${path}`,
      {
        ca: readFileSync(server.caCertPath),
        headers: { authorization: `Bearer ${server.adminToken}`, accept },
        timeout: 5000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
