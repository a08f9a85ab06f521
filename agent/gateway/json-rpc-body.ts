// A POST's body as JSON-RPC: the Content-Type and size limits while it is
// read, then JSON, then one message or a batch of them. Refusals are results
// with the HTTP status and JSON-RPC error code the gateway answers them with.
import type { IncomingMessage } from 'node:http';
import type { Exchange, Refusal } from './exchange.js';
import {
  isRequest,
  parseJsonRpcMessage,
  RpcErrorCode,
  type JsonRpcMessage,
} from '../child/stdio-connection.js';

export const MAX_BATCH = 100;

export interface JsonRpcBody {
  messages: JsonRpcMessage[];
  /** Sent as a JSON array (answered as one, even with one element). */
  batch: boolean;
  /** How many of the messages are requests (they need answers). */
  requests: number;
  /** The initialize request, when the body holds one. */
  initialize: JsonRpcMessage | undefined;
}

export type BodyResult<T> = { ok: true; value: T } | ({ ok: false } & Refusal);

/** What reading a body needs of the request's exchange. */
export interface BodyExchange {
  readonly req: IncomingMessage;
  /** True once the request is answered: the rest of the body is not wanted. */
  readonly done: boolean;
  reject(status: number, message: string, headers?: Record<string, string>): void;
  finish(status: number): void;
}

const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i;

/** A POST must say it carries JSON (parameters such as charset allowed). */
export function checkJsonContentType(contentType: string | undefined): BodyResult<undefined> {
  if (
    contentType === 'application/json' ||
    (contentType !== undefined && JSON_CONTENT_TYPE.test(contentType))
  )
    return { ok: true, value: undefined };
  return {
    ok: false,
    status: 415,
    message: 'Unsupported Media Type: Content-Type must be application/json',
  };
}

/**
 * Reads a POST's JSON body up to `maxBodyBytes`; refusals (415, 413) are
 * answered here. `onBody` gets the body (undefined when empty) and its size.
 */
export function readJsonBody(
  exchange: BodyExchange,
  maxBodyBytes: number,
  onBody: (body: Buffer | undefined, size: number) => void,
): void {
  const { req } = exchange;
  const contentType = checkJsonContentType(req.headers['content-type']);
  if (!contentType.ok) {
    req.resume();
    exchange.reject(contentType.status, contentType.message);
    return;
  }
  if (Number(req.headers['content-length']) > maxBodyBytes) {
    rejectTooLarge(exchange, maxBodyBytes);
    return;
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    if (exchange.done) return;
    size += chunk.length;
    if (size > maxBodyBytes) {
      rejectTooLarge(exchange, maxBodyBytes);
      return;
    }
    if (first === undefined) first = chunk;
    else (chunks ??= [first]).push(chunk);
  });
  req.on('end', () => {
    if (exchange.done) return;
    onBody(chunks !== undefined ? Buffer.concat(chunks, size) : first, size);
  });
  req.on('error', () => exchange.finish(499));
}

function rejectTooLarge(exchange: BodyExchange, maxBodyBytes: number): void {
  // Answer now and close the connection rather than read the rest.
  exchange.reject(413, `Payload Too Large: the limit is ${maxBodyBytes} bytes`, {
    connection: 'close',
  });
  exchange.req.resume();
}

/** The JSON-RPC messages of a POST body: one, or a batch of 1 to MAX_BATCH. */
export function parseJsonRpcBody(body: Buffer | undefined): BodyResult<JsonRpcBody> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body === undefined ? '' : body.toString('utf8'));
  } catch {
    // Not JSON: the answer says so; nothing else to do with it.
    return invalid('Parse error: the body is not JSON', RpcErrorCode.PARSE_ERROR);
  }
  const batch = Array.isArray(parsed);
  const items = batch ? (parsed as unknown[]) : [parsed];
  if (items.length === 0 || items.length > MAX_BATCH)
    return invalid(`Invalid Request: a batch holds 1 to ${MAX_BATCH} messages`);
  const messages: JsonRpcMessage[] = [];
  let requests = 0;
  let initialize: JsonRpcMessage | undefined;
  for (const item of items) {
    const message = parseJsonRpcMessage(item);
    if (message === undefined) return invalid('Invalid Request: not a JSON-RPC 2.0 message');
    if (isRequest(message)) {
      requests += 1;
      if (message.method === 'initialize') initialize = message;
    }
    messages.push(message);
  }
  return { ok: true, value: { messages, batch, requests, initialize } };
}

function invalid(
  message: string,
  rpcCode: number = RpcErrorCode.INVALID_REQUEST,
): BodyResult<never> {
  return { ok: false, status: 400, message, rpcCode };
}

/**
 * Reads and parses a POST's body for `exchange`, counting its bytes and
 * noting its first method for the access record; refusals are answered here.
 */
export function readJsonRpcBody(
  exchange: Exchange,
  maxBodyBytes: number,
  onMessages: (body: JsonRpcBody) => void,
): void {
  readJsonBody(exchange, maxBodyBytes, (body, size) => {
    exchange.context.counters.bytesIn += size;
    const parsed = parseJsonRpcBody(body);
    if (!parsed.ok) {
      exchange.reject(parsed.status, parsed.message, parsed.headers, parsed.rpcCode);
      return;
    }
    exchange.noteMethod(parsed.value.messages[0]!);
    onMessages(parsed.value);
  });
}
