/**
 * The bare node:http server the bench compares a front's cache hits with: every request answered with
 * the same JSON bytes, no framework, no routing, no metrics. The baseline (baseline-server.ts) and the
 * ladder's bare rungs (ladder-server.ts) both run it; it loads nothing but node:http.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on 127.0.0.1 on a free port; resolves with that port. */
export async function listenBare(body: Buffer): Promise<number> {
  const headers = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(body.length),
  };
  const server = http.createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}
