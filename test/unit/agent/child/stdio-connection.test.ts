// Newline-delimited JSON-RPC framing over a child's pipes, with in-memory streams.
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import {
  createStdioConnection,
  parseJsonRpcMessage,
  RpcRequestError,
  type JsonRpcMessage,
} from '../../../../agent/child/stdio-connection.js';

describe('parseJsonRpcMessage', () => {
  it('reads requests, notifications and responses', () => {
    expect(parseJsonRpcMessage({ jsonrpc: '2.0', id: 1, method: 'ping' })).toBeDefined();
    expect(parseJsonRpcMessage({ jsonrpc: '2.0', method: 'notifications/x' })).toBeDefined();
    expect(parseJsonRpcMessage({ jsonrpc: '2.0', id: 'a', result: {} })).toBeDefined();
    expect(
      parseJsonRpcMessage({ jsonrpc: '2.0', id: null, error: { code: -1, message: 'm' } }),
    ).toBeDefined();
  });

  it('refuses anything else', () => {
    for (const value of [
      null,
      [],
      'x',
      { id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: {}, method: 'ping' },
      { jsonrpc: '2.0', id: 1 },
      { jsonrpc: '2.0', id: 1, error: { code: 'x' } },
      { jsonrpc: '2.0', method: 'x', params: 3 },
      { jsonrpc: '2.0', method: 5 },
    ])
      expect(parseJsonRpcMessage(value)).toBeUndefined();
  });
});

describe('createStdioConnection', () => {
  function pair() {
    const toChild = new PassThrough();
    const fromChild = new PassThrough();
    const written: JsonRpcMessage[] = [];
    toChild.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        written.push(JSON.parse(line) as JsonRpcMessage);
    });
    const stray: string[] = [];
    const connection = createStdioConnection({
      input: toChild,
      output: fromChild,
      onStrayLine: (chunk, start, end) => stray.push(chunk.toString('utf8', start, end)),
    });
    const received: JsonRpcMessage[] = [];
    connection.onmessage = (message) => received.push(message);
    return { connection, fromChild, written, received, stray };
  }
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('resolves its own requests and hands everything else to onmessage', async () => {
    const { connection, fromChild, written, received } = pair();

    const answer = connection.request('ping', {}, 5_000);
    await tick();
    const id = (written[0] as { id: number }).id;
    fromChild.write(`{"jsonrpc":"2.0","method":"notifications/message","params":{}}\n`);
    fromChild.write(`{"jsonrpc":"2.0","id":${id},"result":{"ok":true}}\n`);

    expect(await answer).toEqual({ ok: true });
    expect(received).toEqual([{ jsonrpc: '2.0', method: 'notifications/message', params: {} }]);
  });

  it('rejects a request answered with an error, and one that times out', async () => {
    const { connection, fromChild, written } = pair();

    const failing = connection.request('tools/list', {}, 5_000);
    await tick();
    const id = (written[0] as { id: number }).id;
    fromChild.write(`{"jsonrpc":"2.0","id":${id},"error":{"code":-32601,"message":"nope"}}\n`);

    await expect(failing).rejects.toMatchObject({ rpcCode: -32601, message: 'nope' });
    await expect(connection.request('ping', {}, 10)).rejects.toBeInstanceOf(RpcRequestError);
  });

  it('passes lines that are not JSON-RPC to onStrayLine and keeps going', async () => {
    const { fromChild, received, stray } = pair();

    fromChild.write('Server listening...\n{broken json\n{"not":"rpc"}\n');
    fromChild.write('{"jsonrpc":"2.0","method":"a"}\n');
    await tick();

    expect(stray).toEqual(['Server listening...', '{broken json', '{"not":"rpc"}']);
    expect(received).toHaveLength(1);
  });

  it('writes what is sent in one turn of the event loop at once, in order', async () => {
    const writes: string[][] = [];
    const input = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        writes.push([chunk.toString()]);
        callback();
      },
      writev(chunks, callback) {
        writes.push(chunks.map(({ chunk }) => String(chunk)));
        callback();
      },
    });
    const connection = createStdioConnection({ input, output: new PassThrough() });

    for (const method of ['a', 'b', 'c']) connection.send({ jsonrpc: '2.0', method });
    expect(writes).toEqual([]);
    await tick();
    connection.send({ jsonrpc: '2.0', method: 'd' });
    await tick();

    expect(writes).toEqual([
      ['a', 'b', 'c'].map((method) => `{"jsonrpc":"2.0","method":"${method}"}\n`),
      ['{"jsonrpc":"2.0","method":"d"}\n'],
    ]);
  });

  it('fails pending requests on close and refuses to send afterwards', async () => {
    const { connection } = pair();
    const pending = connection.request('ping', {}, 5_000);

    connection.close('the MCP server exited with code 1');

    await expect(pending).rejects.toThrow('the MCP server exited with code 1');
    expect(connection.send({ jsonrpc: '2.0', method: 'x' })).toBe(false);
  });
});
