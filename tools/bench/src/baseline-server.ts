/**
 * The bench's baseline: a bare node:http server that answers every request with the same JSON bytes a
 * front serves for a cached GET /info/:id. No framework, no routing, no metrics: the ceiling for any
 * Node HTTP front on this machine. Started by the bench (fork); reports its port over IPC.
 */
import http from 'node:http';

const body = Buffer.from(process.env['BASELINE_BODY'] ?? '{}');
const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length) };
const server = http.createServer((_req, res) => {
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
