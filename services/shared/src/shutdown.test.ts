/**
 * The shutdown sequence (installShutdown): readiness off and the onShutdown callbacks at once, the
 * pod keeps answering for the delay, but every answer from then on closes its connection, so a client
 * that held a keep-alive connection (through a Service, conntrack pins it to this pod) reconnects to
 * another pod, and the listener then closes without waiting for the drain's forced close.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createLogger } from './logger.js';
import { installShutdown, Lifecycle } from './server.js';

function get(agent: http.Agent, port: number): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('error', reject);
  });
}

test('shutdown: callbacks and readiness at once, answers close their connection during the delay, then a prompt close', async () => {
  const lifecycle = new Lifecycle();
  let callbacks = 0;
  lifecycle.onShutdown(() => callbacks++);
  const server = http.createServer((_req, res) => {
    res.writeHead(200, ['Content-Type', 'text/plain']);
    res.end(lifecycle.shuttingDown ? 'draining' : 'ok');
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let sockets = 0;
  server.on('connection', () => sockets++);
  try {
    const before = await get(agent, port);
    assert.deepEqual(before, { status: 200, connection: 'keep-alive' });

    const shutdown = installShutdown({
      logger: createLogger({ name: 'shutdown-test', level: 'silent' }),
      server,
      lifecycle,
      delayMs: 400,
      drainTimeoutMs: 5000,
      closers: [],
    });
    const t0 = Date.now();
    const done = shutdown('test');
    assert.equal(lifecycle.shuttingDown, true, 'readiness goes off at once');
    assert.equal(callbacks, 1, 'the onShutdown callbacks ran at once');
    lifecycle.shuttingDown = true;
    assert.equal(callbacks, 1, 'once only');

    // The keep-alive connection is still served during the delay, and closed after that answer.
    const during = await get(agent, port);
    assert.deepEqual(during, { status: 200, connection: 'close' });
    assert.equal(sockets, 1, 'answered on the connection the client already held');
    await done;
    const took = Date.now() - t0;
    assert.ok(
      took < 2000,
      `the listener closed ${took} ms after the shutdown began (delay 400, forced 5000)`,
    );
    assert.equal(server.listening, false);
  } finally {
    agent.destroy();
    server.close();
  }
});
