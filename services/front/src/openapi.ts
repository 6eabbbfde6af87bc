import type Router from '@koa/router';
import {
  MAX_BOOK_ID,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_RESTOCK,
  MAX_TOPIC_LENGTH,
} from '../../shared/src/validate.js';
import { DEFAULT_BODY_LIMIT } from '../../shared/src/body.js';
import { DEFAULT_SEARCH_PAGING, MAX_CURSOR_LENGTH, type SearchPaging } from '../../shared/src/search-page.js';
import { JSON_TYPE } from './routes.js';

/**
 * The OpenAPI 3.1 document of the public API (what the front serves). The one source of truth:
 * GET /openapi.json serves it pre-serialised, `scripts/render-openapi.mjs` writes it to
 * docs/openapi.json, and test/api/openapi.test.ts checks both and validates real responses of every
 * route against it.
 */

type Schema = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
/** Characters no input may contain (C0 controls and DEL). */
const CONTROL = '\\x00-\\x1f\\x7f';
/** What separates words of a topic: spaces (also Unicode ones), '-', '_' and '+'. */
export const TOPIC_SEPARATORS =
  ' \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff_+\\-';

/** Error codes the store can answer with a 5xx, whatever the route (a dependency is down or slow). */
const SERVER_CODES = {
  502: ['bad_gateway'],
  503: ['service_unavailable', 'primary_unavailable', 'standby_unavailable'],
  504: ['upstream_timeout'],
} as const;

function errorSchema(codes: readonly string[]): Schema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: [...codes] },
          message: { type: 'string' },
        },
      },
    },
  };
}

function error(description: string, codes: readonly string[], headers: Record<string, unknown> = {}): Schema {
  return {
    description: `${description} (\`${codes.join('`, `')}\`)`,
    headers: {
      'X-Served-By': header('X-Served-By'),
      'X-Front': header('X-Front'),
      'X-Request-Id': header('X-Request-Id'),
      ...headers,
    },
    content: { 'application/json': { schema: errorSchema(codes) } },
  };
}

/** The 5xx answers of a route: the common codes, and `extra503` where the route has more. */
function serverErrors(extra503: readonly string[] = []): Record<string, Schema> {
  return {
    '502': error('An upstream service answered something unexpected', SERVER_CODES[502]),
    '503': error('A service or database the request needs is unavailable', [
      ...SERVER_CODES[503],
      ...extra503,
    ]),
    '504': error('An upstream service did not answer in time', SERVER_CODES[504]),
  };
}

function ok(description: string, schema: Schema, headers: Record<string, unknown>): Schema {
  return {
    description,
    headers: {
      'X-Served-By': header('X-Served-By'),
      'X-Front': header('X-Front'),
      'X-Request-Id': header('X-Request-Id'),
      ...headers,
    },
    content: { 'application/json': { schema } },
  };
}

const readHeaders = {
  'X-Cache': header('X-Cache'),
  'X-Front': header('X-Front'),
  'X-Database': header('X-Database'),
};
const writeHeaders = { 'X-Invalidated': header('X-Invalidated') };
const keyedWriteHeaders = { ...writeHeaders, 'Idempotent-Replayed': header('Idempotent-Replayed') };
const unauthorized = error('The admin bearer token is missing or wrong', ['unauthorized'], {
  'WWW-Authenticate': header('WWW-Authenticate'),
});
const tooLarge = error(`The body is larger than ${DEFAULT_BODY_LIMIT} bytes`, ['payload_too_large']);
const unsupportedMediaType = error(
  'A body sent with a Content-Type other than `application/json`, or with none',
  ['unsupported_media_type'],
);

const purchase = (method: 'POST' | 'PUT') => ({
  operationId: method === 'POST' ? 'purchase' : 'purchasePut',
  summary: method === 'POST' ? 'Buy one copy of a book' : 'Buy one copy of a book (PUT, same as POST)',
  description:
    'Decrements the stock by one and records an order, in one transaction on the primary. With an ' +
    '`Idempotency-Key`, a retry returns the first result (`Idempotent-Replayed: true`) and buys nothing ' +
    'more. Takes no body (an empty JSON object is accepted) and no query parameters.',
  tags: ['orders'],
  parameters: [param('BookId'), param('IdempotencyKey')],
  requestBody: {
    required: false,
    content: { 'application/json': { schema: ref('EmptyBody') } },
  },
  responses: {
    '200': {
      ...ok(
        'The purchase (or, replayed, the first purchase made under this key)',
        ref('Purchase'),
        keyedWriteHeaders,
      ),
      links: {
        getOrder: {
          operationId: 'getOrder',
          parameters: { orderId: '$response.body#/orderId' },
          description: 'The order this purchase made',
        },
        getBook: {
          operationId: 'getBook',
          parameters: { id: '$response.body#/bookId' },
          description: 'The book, at least at the version this purchase produced',
        },
      },
    },
    '400': error('Bad id, key, body or a query parameter', [
      'invalid_id',
      'invalid_idempotency_key',
      'invalid_json',
      'invalid_body',
      'unknown_parameter',
    ]),
    '404': error('No such book', ['book_not_found']),
    '409': error('The book is sold out', ['out_of_stock']),
    '413': tooLarge,
    '415': unsupportedMediaType,
    '422': error('The key was already used to buy another book', ['idempotency_key_reused']),
    ...serverErrors(['commit_outcome_unknown']),
  },
});

/**
 * The document for a front whose search pages are `paging` (SEARCH_PAGE_SIZE, SEARCH_MAX_PAGE_SIZE):
 * the bounds of `limit` are the ones it enforces.
 */
export function openApiDocumentFor(paging: SearchPaging) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Bazar',
      version: '0.1.0',
      summary: "The world's smallest book store, built the way a large one would be.",
      description:
        'The public API of the front. Inputs come in the path, the headers and a JSON body, and in the query ' +
        'only for the page of a search (`limit`, `cursor`): any other query parameter, on any route, is 400 ' +
        '`unknown_parameter`. A body must be sent as ' +
        '`Content-Type: application/json` (parameters such as `charset` allowed): a body of any other type, ' +
        'or of none, is 415 `unsupported_media_type`; an empty body needs no Content-Type. Every error body is ' +
        '`{"error":{"code","message"}}`. Unknown routes answer 404 `not_found`, a method a route does not ' +
        'serve 405 `method_not_allowed` with `Allow`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'books', description: 'Search and read books (cached by the front)' },
      { name: 'orders', description: 'Buy books and look orders up' },
      { name: 'admin', description: 'Price and stock changes (admin bearer token)' },
      { name: 'operations', description: 'Probes, metrics and this document' },
    ],
    paths: {
      '/search/{topic}': {
        get: {
          operationId: 'search',
          summary: 'The books of a topic, a page at a time',
          description:
            "Case-insensitive; '-', '_', '+' and spaces separate words, so `distributed-systems` and " +
            '`Distributed%20Systems` are the same search. An unknown topic is 200 with no books. ' +
            `Paginated by book id (keyset): a page holds at most \`limit\` books (${paging.defaultLimit} ` +
            `when absent, ${paging.maxLimit} at most), and \`next\` is the cursor of the page after it, ` +
            'null on the last page. Pages never overlap, and a book in the topic for the whole walk is on ' +
            'exactly one page, whatever is written meanwhile (a book added during the walk is on a later ' +
            "page if its id is above the current page's, else on none). Cached by the front per topic, " +
            'cursor and limit; a page lists ids and titles, which no write of this API changes.',
          tags: ['books'],
          parameters: [param('Topic'), param('Limit'), param('Cursor'), param('CacheControl')],
          responses: {
            '200': ok(
              "A page of the topic's books, by id, and the next page's cursor",
              ref('SearchResult'),
              readHeaders,
            ),
            '400': error('Bad topic, limit, cursor or another query parameter', [
              'invalid_topic',
              'invalid_limit',
              'invalid_cursor',
              'cursor_topic_mismatch',
              'unknown_parameter',
            ]),
            ...serverErrors(),
          },
        },
      },
      '/info/{id}': {
        get: {
          operationId: 'getBook',
          summary: 'One book',
          description:
            "Served from the front's cache when it holds the current version (`X-Cache: hit`); never older " +
            'than a write acknowledged to anyone, nor (strict mode) than an answer any front completed ' +
            'before this read began (docs/guarantees.md). A client session sends `X-Min-Version`.',
          tags: ['books'],
          parameters: [param('BookId'), param('CacheControl'), param('MinVersion')],
          responses: {
            '200': ok('The book', ref('Book'), readHeaders),
            '400': error('Bad id, X-Min-Version or a query parameter', [
              'invalid_id',
              'invalid_min_version',
              'unknown_parameter',
            ]),
            '404': error('No such book', ['book_not_found']),
            '412': error('X-Min-Version is newer than any version of the book', ['unknown_version']),
            ...serverErrors(['stale_read_refused', 'write_in_flight']),
          },
        },
      },
      '/purchase/{id}': { post: purchase('POST'), put: purchase('PUT') },
      '/orders/{orderId}': {
        get: {
          operationId: 'getOrder',
          summary: 'One order',
          description:
            'Read from the standby first, so it works while the primary is down; an order the standby does ' +
            'not have while the primary is down is 503 `primary_unavailable`, never 404.',
          tags: ['orders'],
          parameters: [param('OrderId')],
          responses: {
            '200': ok('The order', ref('Order'), { 'X-Database': header('X-Database') }),
            '400': error('A query parameter', ['unknown_parameter']),
            '404': error('No such order (also for an id that is not a UUID)', ['order_not_found']),
            ...serverErrors(),
          },
        },
      },
      '/books/{id}': {
        patch: {
          operationId: 'setPrice',
          summary: 'Change the price of a book',
          tags: ['admin'],
          security: [{ adminToken: [] }],
          parameters: [param('BookId')],
          requestBody: { required: true, content: { 'application/json': { schema: ref('PriceUpdate') } } },
          responses: {
            '200': ok('The book with its new price and version', ref('Book'), writeHeaders),
            '400': error('Bad id, body, price or a query parameter', [
              'invalid_id',
              'invalid_json',
              'invalid_body',
              'invalid_price',
              'unknown_parameter',
            ]),
            '401': unauthorized,
            '404': error('No such book', ['book_not_found']),
            '413': tooLarge,
            '415': unsupportedMediaType,
            ...serverErrors(['commit_outcome_unknown']),
          },
        },
      },
      '/books/{id}/restock': {
        post: {
          operationId: 'restock',
          summary: 'Add stock to a book',
          description:
            'With an `Idempotency-Key`, a retry returns the first result (`Idempotent-Replayed: true`) and adds ' +
            'nothing more; the same key for another book or quantity is 422.',
          tags: ['admin'],
          security: [{ adminToken: [] }],
          parameters: [param('BookId'), param('IdempotencyKey')],
          requestBody: { required: true, content: { 'application/json': { schema: ref('Restock') } } },
          responses: {
            '200': ok(
              'The book with its new stock and version (replayed: as the first restock under this key left it)',
              ref('Book'),
              keyedWriteHeaders,
            ),
            '400': error('Bad id, key, body, quantity or a query parameter', [
              'invalid_id',
              'invalid_idempotency_key',
              'invalid_json',
              'invalid_body',
              'invalid_quantity',
              'unknown_parameter',
            ]),
            '401': unauthorized,
            '404': error('No such book', ['book_not_found']),
            '409': error('The stock would exceed 2147483647', ['stock_overflow']),
            '413': tooLarge,
            '415': unsupportedMediaType,
            '422': error('The key was already used for another restock', ['idempotency_key_reused']),
            ...serverErrors(['commit_outcome_unknown']),
          },
        },
      },
      '/livez': {
        get: {
          operationId: 'livez',
          summary: 'Liveness: the process runs',
          tags: ['operations'],
          responses: {
            '200': ok('Alive', ref('Live'), {}),
          },
        },
      },
      '/readyz': {
        get: {
          operationId: 'readyz',
          summary: 'Readiness: listening, discovery synced, live policy read',
          tags: ['operations'],
          responses: {
            '200': ok('Ready', ref('Readiness'), {}),
            '503': ok('Not ready (the failing checks say why)', ref('Readiness'), {}),
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus metrics',
          tags: ['operations'],
          responses: {
            '200': {
              description: 'Prometheus text exposition format',
              headers: { 'X-Served-By': header('X-Served-By'), 'X-Front': header('X-Front') },
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          tags: ['operations'],
          responses: {
            '200': ok('The OpenAPI 3.1 document of this API', { type: 'object' }, {}),
            '400': error('A query parameter', ['unknown_parameter']),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'The admin token (`ADMIN_TOKEN`; `npm start` prints it)',
        },
      },
      parameters: {
        BookId: {
          name: 'id',
          in: 'path',
          required: true,
          description: 'A book id: a positive integer (one past the column range cannot name a book: 404)',
          schema: { type: 'integer', format: 'int32', minimum: 1, maximum: MAX_BOOK_ID },
        },
        Topic: {
          name: 'topic',
          in: 'path',
          required: true,
          description:
            `1-${MAX_TOPIC_LENGTH} characters, no control characters, at least one that is not a separator ` +
            "(space, '-', '_', '+')",
          schema: {
            type: 'string',
            minLength: 1,
            maxLength: MAX_TOPIC_LENGTH,
            pattern: `^[^${CONTROL}]*[^${CONTROL}${TOPIC_SEPARATORS}][^${CONTROL}]*$`,
          },
        },
        Limit: {
          name: 'limit',
          in: 'query',
          required: false,
          description: `Books per page: an integer from 1 to ${paging.maxLimit} (default ${paging.defaultLimit})`,
          schema: { type: 'integer', minimum: 1, maximum: paging.maxLimit, default: paging.defaultLimit },
        },
        Cursor: {
          name: 'cursor',
          in: 'query',
          required: false,
          description:
            'Where the page starts: the `next` of the previous page of the same topic, as it was given ' +
            '(opaque; absent: the first page). A cursor this store did not make is 400 `invalid_cursor`; ' +
            'one made for another topic, 400 `cursor_topic_mismatch`. A cursor stays valid: it names a ' +
            'position in the topic, not a moment.',
          schema: { type: 'string', minLength: 1, maxLength: MAX_CURSOR_LENGTH, pattern: '^[A-Za-z0-9_-]+$' },
        },
        OrderId: {
          name: 'orderId',
          in: 'path',
          required: true,
          description: 'An order id (a UUID, as a purchase returned it)',
          schema: { type: 'string', format: 'uuid', pattern: UUID_PATTERN },
        },
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Makes the write retry-safe: a retry with the same key returns the first result and applies ' +
            'nothing more. Without one the front makes one up, so its own retries never apply twice.',
          schema: {
            type: 'string',
            minLength: 1,
            maxLength: MAX_IDEMPOTENCY_KEY_LENGTH,
            pattern: '^[\\x21-\\x7e]+$',
          },
        },
        MinVersion: {
          name: 'X-Min-Version',
          in: 'header',
          required: false,
          description:
            "A client session's token: the highest version of this book the client has seen (from a read's " +
            "or a write's `version`). The answer shows at least that version, whichever front serves it " +
            '(read-your-writes and monotonic reads across fronts); a version that does not exist is 412. ' +
            'Empty is the same as absent (no minimum).',
          schema: { type: 'string', pattern: '^[0-9]{0,15}$' },
        },
        CacheControl: {
          name: 'Cache-Control',
          in: 'header',
          required: false,
          description:
            "`no-cache` or `no-store` skips the front's cache (and refreshes it); other values are ignored",
          schema: { type: 'string' },
        },
      },
      headers: {
        'X-Served-By': {
          description:
            'The process that produced the body: the front on a cache hit or its own answer, the catalog or order pod otherwise',
          required: true,
          schema: { type: 'string', minLength: 1 },
        },
        'X-Front': {
          description:
            'The front process that took the request (on every answer of a front, errors included)',
          required: true,
          schema: { type: 'string', minLength: 1 },
        },
        'X-Cache': {
          description: 'Whether the front answered from its cache',
          required: true,
          schema: { type: 'string', enum: ['hit', 'miss'] },
        },
        'X-Request-Id': {
          description:
            "The request's id: the client's own `X-Request-Id` when it is 1-128 of `A-Z a-z 0-9 . _ : -`, else " +
            'one the front made up. The front passes it to the catalog or order pod it asks, and they to the fronts ' +
            'they invalidate; at `LOG_LEVEL=debug` every log line about the request carries it (`reqId`). Absent on ' +
            'a cache hit, which reached nothing else',
          required: false,
          schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
        },
        'X-Database': {
          description:
            'The PostgreSQL server the answer was read from: its role and address, `primary <host>:<port>` or ' +
            '`standby <host>:<port>` (on Kubernetes the host is the Service the pod reads). Absent on a cache hit: ' +
            'no database was asked',
          required: false,
          schema: { type: 'string', pattern: '^(primary|standby) [^ ]+:[0-9]+$' },
        },
        'X-Invalidated': {
          description:
            'Fronts that dropped the old version before this answer, of all fronts: `<acknowledged>/<fronts>`',
          required: true,
          schema: { type: 'string', pattern: '^[0-9]+/[0-9]+$' },
        },
        'Idempotent-Replayed': {
          description:
            'Present (`true`) when this answer is the first result of an earlier request with the same key',
          required: false,
          schema: { type: 'string', enum: ['true'] },
        },
        'WWW-Authenticate': {
          description: 'The bearer realm',
          required: true,
          schema: { type: 'string' },
        },
      },
      schemas: {
        Book: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'title', 'topic', 'price', 'stock', 'version'],
          properties: {
            id: { type: 'integer', minimum: 1, maximum: MAX_BOOK_ID },
            title: { type: 'string' },
            topic: { type: 'string' },
            price: ref('Price'),
            stock: { type: 'integer', minimum: 0, maximum: 2_147_483_647 },
            version: { type: 'integer', minimum: 1, description: 'Grows by one on every write to the book' },
          },
        },
        BookSummary: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'title'],
          properties: { id: { type: 'integer', minimum: 1 }, title: { type: 'string' } },
        },
        SearchResult: {
          type: 'object',
          additionalProperties: false,
          required: ['topic', 'books', 'next'],
          properties: {
            topic: {
              type: 'string',
              description: 'The topic as searched: lowercase, words separated by one space',
            },
            books: { type: 'array', maxItems: paging.maxLimit, items: ref('BookSummary') },
            next: {
              type: ['string', 'null'],
              pattern: '^[A-Za-z0-9_-]+$',
              maxLength: MAX_CURSOR_LENGTH,
              description: "The `cursor` of the next page; null on the topic's last page",
            },
          },
        },
        Purchase: {
          type: 'object',
          additionalProperties: false,
          required: ['orderId', 'bookId', 'title', 'price', 'remainingStock', 'version'],
          properties: {
            orderId: { type: 'string', format: 'uuid', pattern: UUID_PATTERN },
            bookId: { type: 'integer', minimum: 1 },
            title: { type: 'string' },
            price: ref('Price'),
            remainingStock: { type: 'integer', minimum: 0 },
            version: { type: 'integer', minimum: 1, description: 'The book version this purchase produced' },
          },
        },
        Order: {
          type: 'object',
          additionalProperties: false,
          required: ['orderId', 'bookId', 'title', 'price', 'createdAt'],
          properties: {
            orderId: { type: 'string', format: 'uuid', pattern: UUID_PATTERN },
            bookId: { type: 'integer', minimum: 1 },
            title: { type: 'string' },
            price: ref('Price'),
            createdAt: { type: 'string', format: 'date-time' },
          },
        },
        Price: {
          type: 'number',
          minimum: 0,
          maximum: 1_000_000,
          description: 'Currency units, at most two decimals',
        },
        PriceUpdate: {
          type: 'object',
          additionalProperties: false,
          required: ['price'],
          properties: { price: { type: 'number', minimum: 0, maximum: 1_000_000, multipleOf: 0.01 } },
        },
        Restock: {
          type: 'object',
          additionalProperties: false,
          required: ['quantity'],
          properties: { quantity: { type: 'integer', minimum: 1, maximum: MAX_RESTOCK } },
        },
        EmptyBody: {
          type: 'object',
          additionalProperties: false,
          maxProperties: 0,
          description: 'A purchase takes no body; an empty object is accepted',
        },
        Live: {
          type: 'object',
          additionalProperties: false,
          required: ['status'],
          properties: { status: { const: 'ok' } },
        },
        Readiness: {
          type: 'object',
          required: ['status', 'pod', 'checks'],
          properties: {
            status: { enum: ['ready', 'not ready'] },
            pod: { type: 'string' },
            checks: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      },
    },
  } as const;
}

/** The document of a front with the default page sizes: what docs/openapi.json holds. */
export const openApiDocument = openApiDocumentFor(DEFAULT_SEARCH_PAGING);

const serialise = (doc: unknown) => Buffer.from(JSON.stringify(doc, null, 2) + '\n');

/** The document as written to docs/openapi.json, and as a front with the default page sizes serves it. */
export const OPENAPI_JSON = serialise(openApiDocument);

/** GET /openapi.json: the document of this front (its page sizes), serialised once, at start-up. */
export function registerOpenApi(router: Router, paging: SearchPaging = DEFAULT_SEARCH_PAGING): void {
  const json =
    paging.defaultLimit === DEFAULT_SEARCH_PAGING.defaultLimit &&
    paging.maxLimit === DEFAULT_SEARCH_PAGING.maxLimit
      ? OPENAPI_JSON
      : serialise(openApiDocumentFor(paging));
  router.get('/openapi.json', (ctx) => {
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = json;
  });
}
