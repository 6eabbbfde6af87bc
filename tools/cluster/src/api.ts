/**
 * A minimal API client for start-up checks (readyz, node and Deployment conditions): node:https with
 * the admin client certificate through the loopback forwarder. Cheaper than a kubectl per poll on two
 * cores, and enough for GETs; manifests are applied with kubectl.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { CertFiles } from './pki.js';

export interface ApiResponse {
  status: number;
  body: string;
}

export class ApiClient {
  private readonly agent: https.Agent;

  constructor(
    readonly url: string,
    caFile: string,
    client: CertFiles,
  ) {
    this.agent = new https.Agent({
      ca: readFileSync(caFile),
      cert: readFileSync(client.cert),
      key: readFileSync(client.key),
      keepAlive: true,
      maxSockets: 2,
    });
  }

  get(path: string, timeoutMs = 5000): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const req = https.get(`${this.url}${path}`, { agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
      req.on('error', reject);
    });
  }

  /** The parsed object, or undefined on 404 (throws on other errors). */
  async getJson<T>(path: string): Promise<T | undefined> {
    const res = await this.get(path);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body.slice(0, 200)}`);
    return JSON.parse(res.body) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface WithConditions {
  status?: { conditions?: Condition[] };
}

export function conditionTrue(obj: WithConditions | undefined, type: string): boolean {
  return obj?.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
}

export function conditionSummary(obj: WithConditions | undefined, type: string): string {
  const c = obj?.status?.conditions?.find((x) => x.type === type);
  return c
    ? `${type}=${c.status}${c.reason ? ` (${c.reason}: ${c.message ?? ''})` : ''}`
    : `no ${type} condition`;
}
