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
 *   search:   client → chain front → chain catalog → one keyset SELECT on the standby (the index on
 *             (lower(topic), id) the catalog's search uses) → answer; the page after `?after=<id>`
 *
 * The NOTIFY prototype (bench --fanout): `POST /purchase/:id?notify` commits the UPDATE with a
 * pg_notify in the same statement (delivered at commit) and answers without pushing anything; with
 * CHAIN_LISTEN_URL every front LISTENs on a connection to the primary and keeps when each
 * notification arrived (process.hrtime, CLOCK_MONOTONIC: comparable between processes on one machine),
 * read back and cleared by GET /notified.
 *
 * No validation, no metrics, no retries, no fencing, no idempotency: what is left is the cost of the
 * hops themselves, which is what Bazar's paths are compared with (same run, same machine). Started by
 * the bench (fork) with CHAIN_ROLE = front | catalog | order; reports its port over IPC.
 */
import http from 'node:http';
import pg from 'pg';
import { NOTIFY_PURCHASE } from './notify-sql.js';

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

/** Notifications a listening front received: how many, and [probe id, hrtime ns] of the bench's probes. */
const notified = { count: 0, probes: [] as Array<[number, number]> };
const channel = process.env['CHAIN_CHANNEL'] ?? 'bazar_chain';

async function listen(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => process.exit(1));
  client.on('notification', (msg) => {
    const at = Number(process.hrtime.bigint());
    notified.count++;
    const w = (JSON.parse(msg.payload ?? '{}') as { w?: number | null }).w;
    if (typeof w === 'number') notified.probes.push([w, at]);
  });
  await client.connect();
  await client.query(`LISTEN ${channel}`);
}

function chainFront(): http.RequestListener {
  const catalog = process.env['CHAIN_CATALOG_URL'] ?? '';
  const order = process.env['CHAIN_ORDER_URL'] ?? '';
  return (req, res) => {
    const url = req.url ?? '';
    if (url === '/notified') {
      req.resume();
      answer(res, 200, JSON.stringify(notified));
      notified.probes = [];
      return;
    }
    const upstream = url.startsWith('/info/')
      ? call(`${catalog}/books/${idFrom(url, '/info/')}`, 'GET')
      : url.startsWith('/search/')
        ? call(`${catalog}${url}`, 'GET')
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
    if (req.url?.startsWith('/search/')) return search(db, req.url, res);
    db.query('SELECT id, title, topic, price, stock, version FROM books WHERE id = $1', [
      idFrom(req.url, '/books/'),
    ]).then(
      (r) => (r.rows[0] ? answer(res, 200, JSON.stringify(r.rows[0])) : answer(res, 404, '{}')),
      () => answer(res, 500, '{}'),
    );
  };
}

/** GET /search/<topic>?after=<id>&limit=<n>: the catalog's keyset query, on the same index. */
function search(db: pg.Pool, url: string, res: http.ServerResponse): void {
  const [path = '', query = ''] = url.split('?');
  const topic = decodeURIComponent(path.slice('/search/'.length)).toLowerCase();
  const q = new URLSearchParams(query);
  const limit = Number(q.get('limit') ?? 20);
  db.query('SELECT id, title FROM books WHERE lower(topic) = $1 AND id > $2 ORDER BY id LIMIT $3', [
    topic,
    Number(q.get('after') ?? 0),
    limit + 1,
  ]).then(
    (r) => {
      const books = (r.rows as Array<{ id: number }>).slice(0, limit);
      const next = r.rows.length > limit ? books[books.length - 1]!.id : null;
      answer(res, 200, JSON.stringify({ topic, books, next }));
    },
    () => answer(res, 500, '{}'),
  );
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
    const [path = '', query] = (req.url ?? '').split('?');
    const id = idFrom(path, '/purchase/');
    const notify = query === 'notify';
    (notify
      ? db.query(NOTIFY_PURCHASE, [id, null, channel])
      : db.query(
          `UPDATE books SET stock = stock - 1, version = version + 1
       WHERE id = $1 AND stock > 0 RETURNING id, title, price, stock, version`,
          [id],
        )
    )
      .then(async (r) => {
        const book = r.rows[0] as { id: number; version: number; n?: unknown } | undefined;
        if (!book) return answer(res, 409, '{}');
        if (notify) {
          delete book.n;
          return answer(res, 200, JSON.stringify(book));
        }
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
const listenUrl = process.env['CHAIN_LISTEN_URL'];
if (role === 'front' && listenUrl) await listen(listenUrl);
server.listen(Number(process.env['CHAIN_PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
