/** A keep-alive HTTP client for the bench's step-by-step probes (the read after an invalidation). */
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Request written → last byte read, milliseconds. */
  ms: number;
}

export class Client {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
    return new Promise<Reply>((resolve, reject) => {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        headers['content-length'] = String(Buffer.byteLength(opts.body));
      }
      const started = process.hrtime.bigint();
      const req = http.request(
        url,
        { method: opts.method ?? 'GET', headers, agent: this.#agent, timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
              ms: Number(process.hrtime.bigint() - started) / 1e6,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  async json<T>(
    url: string,
    opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) {
    const reply = await this.request(url, opts);
    if (reply.status !== 200)
      throw new Error(`${opts.method ?? 'GET'} ${url}: HTTP ${reply.status} ${reply.body}`);
    return { ...reply, data: JSON.parse(reply.body) as T };
  }

  close(): void {
    this.#agent.destroy();
  }
}
