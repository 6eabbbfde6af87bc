import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { rawHeader } from './server.js';

/** What a real server sees: rawHeader beside req.headers for the same request, sent as raw bytes. */
describe('rawHeader (a real server on loopback)', () => {
  let server: http.Server;
  let port: number;
  let seen: Array<{ raw: string | undefined; parsed: string | string[] | undefined }> = [];
  before(async () => {
    server = http.createServer((req, res) => {
      // rawHeader first: it must not depend on req.headers having been built.
      const raw = rawHeader(req, 'cache-control');
      seen.push({ raw, parsed: req.headers['cache-control'] });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  async function send(headerLines: string[]): Promise<void> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', () => {
        socket.end();
        resolve();
      });
      socket.write(
        ['GET /info/1 HTTP/1.1', 'Host: x', ...headerLines, 'Connection: close', '', ''].join('\r\n'),
      );
    });
  }

  it('reads a header whatever its case, absent as undefined, several lines joined as req.headers joins them', async () => {
    seen = [];
    await send([]);
    await send(['Cache-Control: no-cache']);
    await send(['CACHE-CONTROL: max-age=0']);
    await send(['cache-control: max-age=0', 'X-Other: 1', 'Cache-Control: no-store']);
    assert.deepEqual(
      seen.map((s) => s.raw),
      [undefined, 'no-cache', 'max-age=0', 'max-age=0, no-store'],
    );
    for (const s of seen) assert.equal(s.raw, s.parsed, 'the same value as req.headers');
  });
});
