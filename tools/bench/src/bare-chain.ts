/**
 * The bench's floor for the uncached paths: a *bare chain* that does the work Bazar does on a miss and
 * on a purchase with nothing but `node:http` and `pg`, as separate processes on the same Postgres pair:
 *
 *   read:     client → chain front → chain catalog → SELECT on the standby → answer
 *   purchase: client → chain front → chain order → one autocommit UPDATE … RETURNING (the connection
 *             already at the stack's synchronous_commit level) → POST /invalidate to every chain front,
 *             awaited (CHAIN_PUSH=await, as strict and session do) or not (background, as eventual
 *             does) → answer
 *
 * No validation, no metrics, no retries, no fencing, no idempotency: what is left is the cost of the
 * hops themselves, which is what Bazar's paths are compared with (same run, same machine). Started by
 * the bench (fork) with CHAIN_ROLE = front | catalog | order; reports its port over IPC.
 */
import http from 'node:http';
import pg from 'pg';

const role = process.env['CHAIN_ROLE'];
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8' };

/** One keep-alive request; resolves with the status and the raw body. */
function call(url: string, method: string, body?: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? JSON_HEADERS : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function answer(res: http.ServerResponse, status: number, body: Buffer | string): void {
  res.writeHead(status, { ...JSON_HEADERS, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function idFrom(url: string | undefined, prefix: string): number {
  return Number((url ?? '').slice(prefix.length));
}

function chainFront(): http.RequestListener {
  const catalog = process.env['CHAIN_CATALOG_URL'] ?? '';
  const order = process.env['CHAIN_ORDER_URL'] ?? '';
  return (req, res) => {
    const url = req.url ?? '';
    const upstream = url.startsWith('/info/')
      ? call(`${catalog}/books/${idFrom(url, '/info/')}`, 'GET')
      : url.startsWith('/purchase/')
        ? call(`${order}${url}`, 'POST')
        : Promise.resolve({ status: 200, body: Buffer.from('{}') }); // POST /invalidate
    req.resume();
    upstream.then(
      (r) => answer(res, r.status, r.body),
      () => answer(res, 502, '{}'),
    );
  };
}

function chainCatalog(): http.RequestListener {
  const db = new pg.Pool({ connectionString: process.env['CHAIN_DATABASE_URL'], max: 10 });
  return (req, res) => {
    db.query('SELECT id, title, topic, price, stock, version FROM books WHERE id = $1', [
      idFrom(req.url, '/books/'),
    ]).then(
      (r) => (r.rows[0] ? answer(res, 200, JSON.stringify(r.rows[0])) : answer(res, 404, '{}')),
      () => answer(res, 500, '{}'),
    );
  };
}

function chainOrder(): http.RequestListener {
  const level = process.env['CHAIN_SYNCHRONOUS_COMMIT'] ?? 'remote_apply';
  const db = new pg.Pool({
    connectionString: process.env['CHAIN_DATABASE_URL'],
    max: 10,
    options: `-c synchronous_commit=${level}`,
  });
  const fronts = (process.env['CHAIN_FRONT_URLS'] ?? '').split(',').filter(Boolean);
  const awaitPush = (process.env['CHAIN_PUSH'] ?? 'await') === 'await';
  return (req, res) => {
    req.resume();
    const id = idFrom(req.url, '/purchase/');
    db.query(
      `UPDATE books SET stock = stock - 1, version = version + 1
       WHERE id = $1 AND stock > 0 RETURNING id, title, price, stock, version`,
      [id],
    )
      .then(async (r) => {
        const book = r.rows[0] as { id: number; version: number } | undefined;
        if (!book) return answer(res, 409, '{}');
        const push = JSON.stringify({ items: [{ bookId: book.id, version: book.version }] });
        const pushed = Promise.all(fronts.map((f) => call(`${f}/invalidate`, 'POST', push)));
        if (awaitPush) await pushed;
        else pushed.catch(() => undefined);
        answer(res, 200, JSON.stringify(book));
      })
      .catch(() => answer(res, 500, '{}'));
  };
}

const listeners: Record<string, () => http.RequestListener> = {
  front: chainFront,
  catalog: chainCatalog,
  order: chainOrder,
};
const make = role ? listeners[role] : undefined;
if (!make) throw new Error(`CHAIN_ROLE must be front, catalog or order (got ${role})`);
const server = http.createServer(make());
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env['CHAIN_PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
