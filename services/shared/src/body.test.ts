import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { isJsonMediaType, readJsonBody } from './body.js';
import { HttpError } from './errors.js';

const LIMIT = 64;

interface Answer {
  status: number;
  body: { parsed?: unknown; empty?: true; error?: { code: string; message: string } };
}

/**
 * Sends `raw` (one or more pipelined requests) on one fresh connection and returns every answer in
 * order, read until the server closes (the last request says `Connection: close`).
 */
function exchange(port: number, raw: string): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const answers: Answer[] = [];
      let rest = Buffer.concat(chunks).toString('latin1');
      while (rest.length > 0) {
        const end = rest.indexOf('\r\n\r\n');
        assert.ok(end > 0, `an incomplete answer: ${JSON.stringify(rest.slice(0, 200))}`);
        const head = rest.slice(0, end);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
        assert.ok(Number.isInteger(length), `no Content-Length in ${JSON.stringify(head)}`);
        const body = rest.slice(end + 4, end + 4 + length);
        answers.push({ status, body: JSON.parse(body) as Answer['body'] });
        rest = rest.slice(end + 4 + length);
      }
      resolve(answers);
    });
    // Not end(): a server that sees the client's end before it has answered drops the answers.
    socket.write(Buffer.from(raw, 'latin1'));
  });
}

/** One request, its headers given as lines; Content-Length is the body's unless given. */
function request(headers: string[], body = '', close = true): string {
  const lines = ['POST /x HTTP/1.1', 'Host: 127.0.0.1', ...headers];
  if (!headers.some((h) => /^(content-length|transfer-encoding):/i.test(h))) {
    lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
  }
  if (close) lines.push('Connection: close');
  return lines.join('\r\n') + '\r\n\r\n' + body;
}

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length });
  res.end(bytes);
}

const chunked = (body: string) =>
  (body.length > 0 ? `${body.length.toString(16)}\r\n${body}\r\n` : '') + '0\r\n\r\n';

describe('readJsonBody (a real node:http server on loopback)', () => {
  let server: http.Server;
  let port: number;
  /** How many request bodies the handler got past readJsonBody (parsed or empty). */
  let accepted = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      readJsonBody(req, LIMIT).then(
        (parsed) => {
          accepted++;
          answer(res, 200, parsed === undefined ? { empty: true } : { parsed });
        },
        (err: unknown) => {
          assert.ok(err instanceof HttpError, String(err));
          answer(res, err.status, err.toBody());
        },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const one = async (headers: string[], body = '') => {
    const answers = await exchange(port, request(headers, body));
    assert.equal(answers.length, 1);
    return answers[0]!;
  };

  it('parses a body sent as application/json, whatever the case and parameters of the type', async () => {
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON',
      'APPLICATION/JSON;charset=UTF-8',
      'application/json ; charset="utf-8"',
    ]) {
      const res = await one([`Content-Type: ${type}`], '{"price":12}');
      assert.deepEqual(res, { status: 200, body: { parsed: { price: 12 } } }, type);
    }
  });

  it('refuses a non-empty body of any other type, or of none, with 415 unsupported_media_type', async () => {
    const before = accepted;
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'multipart/form-data',
      'application/jsonx',
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/*',
      '*/*',
      'json',
      'application/ json',
      '',
      undefined,
    ]) {
      const headers = type === undefined ? [] : [`Content-Type: ${type}`];
      const res = await one(headers, '{"quantity":10}');
      assert.equal(res.status, 415, String(type));
      assert.equal(res.body.error?.code, 'unsupported_media_type', String(type));
      assert.match(res.body.error?.message ?? '', /Content-Type: application\/json/);
    }
    assert.equal(accepted, before, 'no refused body reached the handler');
  });

  it('needs no Content-Type for an empty body (declared, chunked or absent), and ignores a wrong one', async () => {
    for (const headers of [
      [],
      ['Content-Length: 0'],
      ['Transfer-Encoding: chunked'],
      ['Content-Type: text/plain', 'Content-Length: 0'],
      ['Content-Type: text/plain', 'Transfer-Encoding: chunked'],
    ]) {
      const body = headers.includes('Transfer-Encoding: chunked') ? chunked('') : '';
      const lines = ['POST /x HTTP/1.1', 'Host: 127.0.0.1', ...headers, 'Connection: close'];
      const answers = await exchange(port, lines.join('\r\n') + '\r\n\r\n' + body);
      assert.deepEqual(answers, [{ status: 200, body: { empty: true } }], JSON.stringify(headers));
    }
  });

  it('refuses a chunked body of the wrong type at its first byte', async () => {
    const res = await one(['Content-Type: text/plain', 'Transfer-Encoding: chunked'], chunked('{}'));
    assert.equal(res.status, 415);
    assert.equal(res.body.error?.code, 'unsupported_media_type');
  });

  it('drains a refused body: the next request on the same connection is read as a request', async () => {
    // The refused bodies would be read as a request line if they were left on the socket.
    const smuggled = 'POST /y HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}';
    const refused = [
      request(['Content-Type: text/plain'], smuggled, false),
      request([], smuggled, false),
      request(['Content-Type: text/plain', 'Transfer-Encoding: chunked'], chunked(smuggled), false),
      request(['Content-Type: text/plain'], 'x'.repeat(LIMIT * 4), false),
    ];
    for (const first of refused) {
      const answers = await exchange(port, first + request(['Content-Type: application/json'], '[1]'));
      assert.deepEqual(
        answers.map((a) => a.status),
        [first.includes(`Content-Length: ${LIMIT * 4}`) ? 413 : 415, 200],
        JSON.stringify(first.slice(0, 80)),
      );
      assert.deepEqual(answers[1]!.body, { parsed: [1] });
    }
  });

  it('a declared oversized body is 413 before its type is looked at; malformed JSON is still 400', async () => {
    const big = await one(['Content-Type: text/plain'], 'x'.repeat(LIMIT + 1));
    assert.equal(big.status, 413);
    assert.equal(big.body.error?.code, 'payload_too_large');
    const malformed = await one(['Content-Type: application/json'], '{"price":');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error?.code, 'invalid_json');
  });
});

describe('isJsonMediaType', () => {
  it('is application/json, case-insensitive, with any parameters', () => {
    for (const yes of ['application/json', 'application/JSON; charset=utf-8', ' application/json ;x=1']) {
      assert.equal(isJsonMediaType(yes), true, yes);
    }
    for (const no of [undefined, '', ';', 'text/json', 'application/json5', 'application/vnd.api+json']) {
      assert.equal(isJsonMediaType(no), false, String(no));
    }
  });
});
