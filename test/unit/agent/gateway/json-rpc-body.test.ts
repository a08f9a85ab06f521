// A POST body as JSON-RPC: the Content-Type and size limits while it is read,
// then JSON, then one message or a batch of 1 to 100, refused as results with
// the status and JSON-RPC code the gateway answers.
// @see https://www.jsonrpc.org/specification#batch
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from '@jest/globals';
import {
  checkJsonContentType,
  MAX_BATCH,
  parseJsonRpcBody,
  readJsonBody,
  type BodyExchange,
} from '../../../../agent/gateway/json-rpc-body.js';

const body = (value: unknown): Buffer =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
const request = (id: number, method = 'tools/list') => ({ jsonrpc: '2.0', id, method });
const notification = { jsonrpc: '2.0', method: 'notifications/initialized' };

describe('parseJsonRpcBody', () => {
  it('parses one message as a batch of one that is not a batch', () => {
    const parsed = parseJsonRpcBody(body(request(1)));

    expect(parsed).toEqual({
      ok: true,
      value: { messages: [request(1)], batch: false, requests: 1, initialize: undefined },
    });
  });

  it('parses a batch, counting its requests and finding its initialize', () => {
    const initialize = { ...request(0, 'initialize'), params: {} };

    const parsed = parseJsonRpcBody(body([notification, request(1), initialize]));

    expect(parsed).toEqual({
      ok: true,
      value: {
        messages: [notification, request(1), initialize],
        batch: true,
        requests: 2,
        initialize,
      },
    });
  });

  it('refuses a body that is not JSON, or empty, with 400 and a parse error', () => {
    for (const raw of [body('{"jsonrpc":'), undefined])
      expect(parseJsonRpcBody(raw)).toEqual({
        ok: false,
        status: 400,
        message: 'Parse error: the body is not JSON',
        rpcCode: -32700,
      });
  });

  it(`refuses an empty batch and one over ${MAX_BATCH} messages with 400`, () => {
    const tooMany = Array.from({ length: MAX_BATCH + 1 }, (_, i) => request(i));
    for (const raw of [body([]), body(tooMany)])
      expect(parseJsonRpcBody(raw)).toEqual({
        ok: false,
        status: 400,
        message: `Invalid Request: a batch holds 1 to ${MAX_BATCH} messages`,
        rpcCode: -32600,
      });
    expect(parseJsonRpcBody(body(tooMany.slice(1))).ok).toBe(true);
  });

  it('refuses anything that is not a JSON-RPC 2.0 message, alone or in a batch', () => {
    for (const value of [{ hello: 'world' }, 42, { id: 1, method: 'x' }, [request(1), 'x']])
      expect(parseJsonRpcBody(body(value))).toEqual({
        ok: false,
        status: 400,
        message: 'Invalid Request: not a JSON-RPC 2.0 message',
        rpcCode: -32600,
      });
  });
});

describe('checkJsonContentType', () => {
  it('allows application/json, with parameters and in any case', () => {
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON'])
      expect(checkJsonContentType(type)).toEqual({ ok: true, value: undefined });
  });

  it('refuses anything else, and a missing header, with 415', () => {
    for (const type of [undefined, '', 'text/plain', 'application/jsonx', 'application/json-rpc'])
      expect(checkJsonContentType(type)).toEqual({
        ok: false,
        status: 415,
        message: 'Unsupported Media Type: Content-Type must be application/json',
      });
  });
});

/** A request stream and an exchange that records what readJsonBody answered. */
function fakeExchange(headers: Record<string, string>) {
  const req = Object.assign(new PassThrough(), { headers }) as unknown as IncomingMessage &
    PassThrough;
  const answers: Array<{ status: number; message: string; headers?: Record<string, string> }> = [];
  const exchange: BodyExchange & { done: boolean } = {
    req,
    done: false,
    reject(status, message, extra) {
      exchange.done = true;
      answers.push({ status, message, ...(extra ? { headers: extra } : {}) });
    },
    finish() {
      exchange.done = true;
    },
  };
  return { req, exchange, answers };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

describe('readJsonBody', () => {
  it('hands over the whole body and its size, however it was chunked', async () => {
    const { req, exchange, answers } = fakeExchange(JSON_HEADERS);
    const read = new Promise<[Buffer | undefined, number]>((resolve) =>
      readJsonBody(exchange, 1024, (got, size) => resolve([got, size])),
    );

    req.write('{"jsonrpc":');
    req.end('"2.0"}');

    const [got, size] = await read;
    expect(got?.toString()).toBe('{"jsonrpc":"2.0"}');
    expect(size).toBe(17);
    expect(answers).toEqual([]);
  });

  it('refuses a body without a JSON Content-Type with 415, unread', () => {
    const { exchange, answers } = fakeExchange({ 'content-type': 'text/plain' });

    readJsonBody(exchange, 1024, () => {
      throw new Error('no body expected');
    });

    expect(answers.map((answer) => answer.status)).toEqual([415]);
  });

  it('refuses a declared length over the limit with 413 before reading, closing the connection', () => {
    const { exchange, answers } = fakeExchange({ ...JSON_HEADERS, 'content-length': '1025' });

    readJsonBody(exchange, 1024, () => {
      throw new Error('no body expected');
    });

    expect(answers).toEqual([
      {
        status: 413,
        message: 'Payload Too Large: the limit is 1024 bytes',
        headers: { connection: 'close' },
      },
    ]);
  });

  it('refuses a body that grows over the limit with 413, once, and never hands it over', async () => {
    const { req, exchange, answers } = fakeExchange(JSON_HEADERS);
    let handed = false;
    readJsonBody(exchange, 8, () => (handed = true));

    req.write('{"a":');
    req.write('"0123456789"');
    req.end('}');
    await new Promise((resolve) => req.once('end', resolve));

    expect(answers.map((answer) => answer.status)).toEqual([413]);
    expect(handed).toBe(false);
  });
});
