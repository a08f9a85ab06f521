// One MCP JSON-RPC connection to a child over stdio: newline-delimited framing
// on its stdin/stdout (the line splitter is agent/child/child-output.ts's), a
// structural parse of each message, and the few requests the agent itself sends
// (initialize, ping). Routing of everything else belongs to whoever sets
// `onmessage` (the session multiplexer); stray stdout lines go to `onStrayLine`.
import type { Readable, Writable } from 'node:stream';
import { createLineSplitter } from './child-output.js';

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  /** null only in an error answering a message whose id could not be read. */
  id: JsonRpcId | null;
  result?: unknown;
  error?: JsonRpcError;
}

export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** JSON-RPC and MCP error codes the agent answers with. */
export const RpcErrorCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** Implementation-defined: the MCP server behind the agent is unavailable or closed. */
  UPSTREAM_UNAVAILABLE: -32000,
  /** Implementation-defined: a request the agent sent got no answer in time. */
  REQUEST_TIMEOUT: -32001,
} as const;

export function isRequest(message: JsonRpcMessage): message is JsonRpcRequest {
  return 'method' in message && 'id' in message && message.id !== undefined;
}

export function isNotification(message: JsonRpcMessage): message is JsonRpcNotification {
  return 'method' in message && !('id' in message && message.id !== undefined);
}

export function isResponse(message: JsonRpcMessage): message is JsonRpcResponse {
  return !('method' in message);
}

/**
 * Reads one JSON-RPC 2.0 message out of an already JSON-parsed value, or
 * returns undefined. Hand-written rather than a zod schema: it runs twice per
 * proxied call on the gateway's hot path, and only needs the envelope (the
 * payloads go through untouched, the child and the client validate them).
 */
export function parseJsonRpcMessage(value: unknown): JsonRpcMessage | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const message = value as Record<string, unknown>;
  if (message.jsonrpc !== '2.0') return undefined;
  const { id, method, params } = message;
  const idOk = typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
  if (params !== undefined && (typeof params !== 'object' || params === null)) return undefined;
  if (typeof method === 'string') {
    if (id === undefined) return message as unknown as JsonRpcNotification;
    return idOk ? (message as unknown as JsonRpcRequest) : undefined;
  }
  if (method !== undefined) return undefined;
  if (!idOk && id !== null) return undefined;
  if ('result' in message) return message as unknown as JsonRpcResponse;
  const error = message.error;
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as JsonRpcError).code === 'number' &&
    typeof (error as JsonRpcError).message === 'string'
  )
    return message as unknown as JsonRpcResponse;
  return undefined;
}

/**
 * Answers a request from the child that no client can take: `ping` is the
 * agent's to answer, anything else gets "method not found" so the child's
 * request does not hang.
 */
export function answerUnrouted(connection: StdioConnection, message: JsonRpcMessage): void {
  if (!isRequest(message)) return;
  if (message.method === 'ping') {
    connection.send({ jsonrpc: '2.0', id: message.id, result: {} });
    return;
  }
  connection.send({
    jsonrpc: '2.0',
    id: message.id,
    error: {
      code: RpcErrorCode.METHOD_NOT_FOUND,
      message: `no MCP client is connected that can answer ${message.method}`,
    },
  });
}

export interface StdioConnectionOptions {
  /** The child's stdin. */
  input: Writable;
  /** The child's stdout. */
  output: Readable;
  /** Largest message accepted from the child; a longer line is dropped and reported. */
  maxMessageBytes?: number;
  /**
   * Bytes queued towards a child that does not read its stdin, beyond which
   * `send` refuses (returns false) instead of growing memory.
   */
  maxPendingWriteBytes?: number;
  /** A stdout line that is not JSON-RPC (bytes [start, end) of `chunk`). */
  onStrayLine?(chunk: Buffer, start: number, end: number, droppedBytes: number): void;
  /** A message longer than `maxMessageBytes` was discarded. */
  onOversizeMessage?(bytes: number): void;
}

export interface StdioConnection {
  /** Receives every message from the child except answers to `request`. */
  onmessage: ((message: JsonRpcMessage) => void) | undefined;
  /** Writes one message; false when the pipe is closed or the child is not reading. */
  send(message: JsonRpcMessage): boolean;
  /** Sends a request with an id of its own and resolves with its `result`. */
  request(method: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown>;
  /** A fresh child-side request id, unique on this connection. */
  nextId(): number;
  readonly closed: boolean;
  /** Fails pending requests; the child's streams are owned by the supervisor. */
  close(reason: string): void;
}

export class RpcRequestError extends Error {
  constructor(
    message: string,
    readonly rpcCode: number,
    readonly rpcData?: unknown,
  ) {
    super(message);
    this.name = 'RpcRequestError';
  }
}

interface InternalPending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_PENDING_WRITE_BYTES = 16 * 1024 * 1024;

export function createStdioConnection(options: StdioConnectionOptions): StdioConnection {
  const { input, output } = options;
  const maxPendingWriteBytes = options.maxPendingWriteBytes ?? DEFAULT_MAX_PENDING_WRITE_BYTES;
  const internal = new Map<number, InternalPending>();
  let lastId = 0;
  let closed = false;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    input.uncork();
  };

  const connection: StdioConnection = {
    onmessage: undefined,
    get closed() {
      return closed;
    },
    nextId: () => ++lastId,
    send(message) {
      if (closed || input.destroyed || !input.writable) return false;
      if (input.writableLength > maxPendingWriteBytes) return false;
      // What is sent in one turn of the event loop (requests of several
      // clients read in one poll) leaves in one write: one syscall and one
      // wake-up of the child instead of one per message. Corked data still
      // counts in writableLength, and end() flushes it first.
      if (!corked) {
        corked = true;
        input.cork();
        setImmediate(uncork);
      }
      input.write(JSON.stringify(message) + '\n');
      return true;
    },
    request(method, params, timeoutMs) {
      return new Promise((resolve, reject) => {
        if (closed) {
          reject(
            new RpcRequestError(
              'connection to the MCP server is closed',
              RpcErrorCode.UPSTREAM_UNAVAILABLE,
            ),
          );
          return;
        }
        const id = ++lastId;
        const timer = setTimeout(() => {
          internal.delete(id);
          reject(
            new RpcRequestError(
              `${method} got no answer within ${timeoutMs} ms`,
              RpcErrorCode.REQUEST_TIMEOUT,
            ),
          );
        }, timeoutMs);
        internal.set(id, { resolve, reject, timer });
        if (!connection.send({ jsonrpc: '2.0', id, method, params })) {
          clearTimeout(timer);
          internal.delete(id);
          reject(
            new RpcRequestError(
              `could not write ${method} to the MCP server`,
              RpcErrorCode.UPSTREAM_UNAVAILABLE,
            ),
          );
        }
      });
    },
    close(reason) {
      if (closed) return;
      closed = true;
      output.off('data', onData);
      for (const pending of internal.values()) {
        clearTimeout(pending.timer);
        pending.reject(new RpcRequestError(reason, RpcErrorCode.UPSTREAM_UNAVAILABLE));
      }
      internal.clear();
    },
  };

  const deliver = (message: JsonRpcMessage): void => {
    if (!('method' in message) && typeof message.id === 'number') {
      const pending = internal.get(message.id);
      if (pending !== undefined) {
        internal.delete(message.id);
        clearTimeout(pending.timer);
        if (message.error !== undefined)
          pending.reject(
            new RpcRequestError(message.error.message, message.error.code, message.error.data),
          );
        else pending.resolve(message.result);
        return;
      }
    }
    connection.onmessage?.(message);
  };

  const splitter = createLineSplitter({
    maxLineBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    onLine(chunk, start, end, droppedBytes) {
      if (closed) return;
      if (droppedBytes > 0) {
        options.onOversizeMessage?.(end - start + droppedBytes);
        return;
      }
      // Skip leading blanks without decoding; JSON-RPC starts with { or [.
      let first = start;
      while (first < end && (chunk[first] === 32 || chunk[first] === 9)) first++;
      if (first === end) return;
      const lead = chunk[first];
      if (lead !== 123 && lead !== 91) {
        options.onStrayLine?.(chunk, start, end, 0);
        return;
      }
      let value: unknown;
      try {
        value = JSON.parse(chunk.toString('utf8', first, end));
      } catch {
        // Not JSON after all: a log line that happens to start with a brace.
        options.onStrayLine?.(chunk, start, end, 0);
        return;
      }
      const values = Array.isArray(value) ? (value as unknown[]) : [value];
      for (const item of values) {
        const message = parseJsonRpcMessage(item);
        if (message === undefined) options.onStrayLine?.(chunk, start, end, 0);
        else deliver(message);
        if (closed) return;
      }
    },
  });

  function onData(chunk: Buffer): void {
    splitter.push(chunk);
  }
  output.on('data', onData);
  output.once('end', () => splitter.end());
  // A child that dies mid-write makes stdin emit EPIPE; the supervisor learns
  // about the exit from the process itself, so the error only closes us.
  input.on('error', () => connection.close('the MCP server closed its input'));
  return connection;
}
