#!/usr/bin/env node
// The state half of scripts/schemathesis.sh: proves that no request the API rejected changed stock or
// orders, by accounting for every change with a request the API accepted.
//
//   node scripts/schemathesis/audit.mjs snapshot <postgres-url>                > before.json
//   node scripts/schemathesis/audit.mjs verify   <postgres-url> before.json run.har
//
// `verify` reads every exchange schemathesis recorded (its HAR report) and replays the accepted writes
// (200 answers not marked Idempotent-Replayed) on the snapshot: each one bumps its book's version by
// one; a purchase adds one order row and takes one copy, a restock adds its quantity and one key row.
// The database afterwards must be exactly that: same version and stock per book, the price, stock and
// version of the last accepted write of each book, every order an accepted purchase returned, and no
// other order or restock row. A rejected request (4xx) that wrote anything breaks the count.
import { readFileSync } from 'node:fs';
import pg from 'pg';

const [command, url, beforeFile, harFile] = process.argv.slice(2);
if (!url || (command !== 'snapshot' && command !== 'verify') || (command === 'verify' && !harFile)) {
  console.error('usage: audit.mjs snapshot <postgres-url> | verify <postgres-url> <before.json> <run.har>');
  process.exit(2);
}

async function snapshot() {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const books = await client.query(
      'SELECT id, price::float8 AS price, stock, version::int8::text AS version FROM books ORDER BY id',
    );
    const orders = await client.query('SELECT id FROM orders ORDER BY id');
    const restocks = await client.query('SELECT count(*)::int AS n FROM restocks');
    return {
      books: books.rows.map((b) => ({ ...b, version: Number(b.version) })),
      orders: orders.rows.map((o) => o.id),
      restocks: restocks.rows[0].n,
    };
  } finally {
    await client.end();
  }
}

function header(entry, name) {
  return entry.response.headers.find((h) => h.name.toLowerCase() === name)?.value;
}

function json(text) {
  try {
    return text === undefined || text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function verify() {
  const before = JSON.parse(readFileSync(beforeFile, 'utf8'));
  const after = await snapshot();
  const entries = JSON.parse(readFileSync(harFile, 'utf8')).log.entries;
  const expected = new Map(before.books.map((b) => [b.id, { ...b }]));
  /** The result of each book's newest accepted write: [version, {price?, stock}]. */
  const newest = new Map();
  const orderIds = [];
  let restocks = 0;
  const tally = { requests: entries.length, writes: 0, accepted: 0, replayed: 0, rejected: 0, byStatus: {} };
  const problems = [];
  for (const e of entries) {
    const method = e.request.method;
    const path = new URL(e.request.url).pathname;
    const status = e.response.status;
    tally.byStatus[status] = (tally.byStatus[status] ?? 0) + 1;
    const purchase = /^\/purchase\/[^/]+$/.test(path) && (method === 'POST' || method === 'PUT');
    const price = /^\/books\/[^/]+$/.test(path) && method === 'PATCH';
    const restock = /^\/books\/[^/]+\/restock$/.test(path) && method === 'POST';
    if (!purchase && !price && !restock) continue;
    tally.writes++;
    if (status >= 500) problems.push(`${method} ${path} answered ${status}: its outcome is unknown`);
    if (status !== 200) {
      tally.rejected++;
      continue;
    }
    if (header(e, 'idempotent-replayed') === 'true') {
      tally.replayed++;
      continue;
    }
    tally.accepted++;
    const body = json(e.response.content?.text);
    const bookId = purchase ? body?.bookId : body?.id;
    const book = expected.get(bookId);
    if (!book) {
      problems.push(`${method} ${path}: 200 for book ${bookId}, which the snapshot does not have`);
      continue;
    }
    book.version++;
    if (purchase) {
      book.stock--;
      orderIds.push(body.orderId);
    } else if (restock) {
      book.stock += json(e.request.postData?.text)?.quantity ?? NaN;
      restocks++;
    }
    const result = purchase ? { stock: body.remainingStock } : { price: body.price, stock: body.stock };
    if ((newest.get(bookId)?.[0] ?? 0) < body.version) newest.set(bookId, [body.version, result]);
  }
  for (const actual of after.books) {
    const want = expected.get(actual.id);
    if (actual.version !== want.version || actual.stock !== want.stock) {
      problems.push(
        `book ${actual.id}: version ${actual.version}, stock ${actual.stock}; the accepted writes account for ` +
          `version ${want.version}, stock ${want.stock}`,
      );
    }
    const last = newest.get(actual.id);
    if (last) {
      const [version, result] = last;
      if (version !== actual.version)
        problems.push(
          `book ${actual.id}: newest accepted write made v${version}, the book is v${actual.version}`,
        );
      if (result.stock !== actual.stock)
        problems.push(
          `book ${actual.id}: its newest write left stock ${result.stock}, it is ${actual.stock}`,
        );
      if (result.price !== undefined && result.price !== actual.price) {
        problems.push(
          `book ${actual.id}: its newest write left price ${result.price}, it is ${actual.price}`,
        );
      }
    } else if (actual.price !== expected.get(actual.id).price) {
      problems.push(`book ${actual.id}: price changed with no accepted write`);
    }
  }
  const known = new Set(after.orders);
  const missing = orderIds.filter((id) => !known.has(id));
  if (missing.length > 0)
    problems.push(`${missing.length} acknowledged orders have no row: ${missing.slice(0, 3)}`);
  const newOrders = after.orders.length - before.orders.length;
  if (newOrders !== orderIds.length) {
    problems.push(`${newOrders} new order rows for ${orderIds.length} accepted purchases`);
  }
  if (after.restocks - before.restocks !== restocks) {
    problems.push(`${after.restocks - before.restocks} new restock rows for ${restocks} accepted restocks`);
  }
  const statuses = Object.entries(tally.byStatus)
    .map(([s, n]) => `${n}×${s}`)
    .join(' ');
  console.log(
    `audit: ${tally.requests} requests (${statuses}); writes ${tally.writes}: ${tally.accepted} accepted, ` +
      `${tally.replayed} replayed, ${tally.rejected} rejected; ${orderIds.length} orders, ${restocks} restocks`,
  );
  if (problems.length > 0) {
    for (const p of problems) console.error(`audit: ${p}`);
    console.error('audit: FAILED: the database changed in a way no accepted request accounts for');
    process.exit(1);
  }
  console.log(
    'audit: every change to stock and orders is an accepted write; rejected requests changed nothing',
  );
}

if (command === 'snapshot') console.log(JSON.stringify(await snapshot()));
else await verify();
