// The answer of one HTTP request to the gateway: a JSON body, an SSE stream or
// a refusal, and the access record emitted once it is complete. It owns the
// response; the gateway's counters and open streams are shared through a context.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientChannel, ReplyChannel } from './session-multiplexer.js';
import type { JsonRpcId, JsonRpcMessage } from '../child/stdio-connection.js';

export interface AccessRecord {
  /** Epoch ms when the request arrived. */
  at: number;
  httpMethod: string;
  /** The JSON-RPC method (the first one of a batch). */
  mcpMethod: string | undefined;
  /** For tools/call: the tool's name. Never arguments or results. */
  toolName: string | undefined;
  /** HTTP status; 499 when the client went away before its answer. */
  status: number;
  /** JSON-RPC error code of the answer, when it was an error. */
  rpcErrorCode: number | undefined;
  latencyMs: number;
  sessionId: string | undefined;
}

export interface GatewayCounters {
  requests: number;
  /** HTTP answers >= 400 and JSON-RPC error answers. */
  errors: number;
  bytesIn: number;
  bytesOut: number;
  /** Epoch ms of the last request, undefined before the first. */
  lastAccessAt: number | undefined;
  /** Notifications not written to a client that stopped reading its stream. */
  droppedMessages: number;
  /** Open client sessions, now. */
  sessions: number;
  /** Client requests waiting for the child, now. */
  inFlight: number;
}

/** What every exchange of one gateway shares. */
export interface ExchangeContext {
  readonly counters: GatewayCounters;
  /** Open server-to-client streams, to end them on close. */
  readonly streams: Set<Exchange>;
  readonly onAccess: ((record: AccessRecord) => void) | undefined;
}

/** An HTTP refusal: status, message, extra headers, and the JSON-RPC error code of its body. */
export interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
  rpcCode?: number;
}

/** Unsent bytes on a stream beyond which notifications are dropped (answers never are). */
export const MAX_STREAM_BACKLOG_BYTES = 4 * 1024 * 1024;
/** What the SDK's transport answers HTTP-level refusals with (JSON-RPC "server error"). */
const TRANSPORT_ERROR = -32000;
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/**
 * One HTTP request: its access record, and for a POST that carries
 * requests, the channel their answers take (JSON body, or an SSE stream once
 * the child sends something before the answer). A class rather than a
 * factory: one is made per request, and its methods live on the prototype.
 */
export class Exchange implements ReplyChannel, ClientChannel {
  readonly at = Date.now();
  readonly startedAt = performance.now();
  mcpMethod: string | undefined = undefined;
  toolName: string | undefined = undefined;
  sessionId: string | undefined = undefined;
  rpcErrorCode: number | undefined = undefined;
  /** Requests of this POST still waiting for an answer. */
  remaining = 0;
  /** For a batch answered as JSON: the answers so far. */
  collected: JsonRpcMessage[] | undefined = undefined;
  streaming = false;
  done = false;
  acceptJson = true;
  acceptSse = true;

  constructor(
    readonly context: ExchangeContext,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {}

  // --- ReplyChannel: answers and related messages for a POST's requests ---

  deliver(message: JsonRpcMessage): boolean {
    if (this.done) return false;
    if ('method' in message) {
      // Progress or a server request tied to this POST: needs a stream.
      if (!this.streaming && !this.startStream()) return false;
      // A client that does not read its stream loses notifications rather
      // than growing the agent's memory; answers are always written.
      if (this.res.writableLength > MAX_STREAM_BACKLOG_BYTES) {
        this.context.counters.droppedMessages += 1;
        return false;
      }
      this.writeEvent(message);
      return true;
    }
    if (message.error !== undefined) {
      this.context.counters.errors += 1;
      this.rpcErrorCode ??= message.error.code;
    }
    this.remaining -= 1;
    if (this.streaming) {
      this.writeEvent(message);
      if (this.remaining <= 0) this.endStream();
    } else if (this.collected !== undefined) {
      this.collected.push(message);
      if (this.remaining <= 0) this.sendAnswers(this.collected);
    } else if (this.acceptJson) this.sendAnswers(message);
    else {
      this.startStream();
      this.writeEvent(message);
      this.endStream();
    }
    return true;
  }

  abandon(_clientId: JsonRpcId): void {
    if (this.done) return;
    this.remaining -= 1;
    if (this.remaining > 0) return;
    if (this.collected !== undefined && this.collected.length > 0 && !this.streaming)
      this.sendAnswers(this.collected);
    else {
      // A request must be answered with a stream or JSON: an empty stream
      // says "nothing more for you" without inventing a result.
      if (!this.streaming) this.startStream();
      this.endStream();
    }
  }

  /** Notes the first message's method and tool name for the access record. */
  noteMethod(head: JsonRpcMessage): void {
    if (!('method' in head)) return;
    this.mcpMethod = head.method;
    if (head.method === 'tools/call' && typeof head.params?.name === 'string')
      this.toolName = head.params.name;
  }

  sendAnswers(answer: JsonRpcMessage | JsonRpcMessage[]): void {
    const body = JSON.stringify(answer);
    const length = Buffer.byteLength(body);
    this.context.counters.bytesOut += length;
    this.res.writeHead(
      200,
      this.sessionId === undefined
        ? { 'content-type': 'application/json', 'content-length': length }
        : {
            'content-type': 'application/json',
            'content-length': length,
            'mcp-session-id': this.sessionId,
          },
    );
    this.res.end(body);
    this.finish(200);
  }

  startStream(): boolean {
    if (!this.acceptSse) return false;
    this.streaming = true;
    this.context.streams.add(this);
    this.res.writeHead(
      200,
      this.sessionId === undefined
        ? SSE_HEADERS
        : { ...SSE_HEADERS, 'mcp-session-id': this.sessionId },
    );
    this.res.flushHeaders();
    if (this.collected !== undefined) {
      for (const answer of this.collected) this.writeEvent(answer);
      this.collected = undefined;
    }
    return true;
  }

  writeEvent(message: JsonRpcMessage): void {
    const frame = `event: message\ndata: ${JSON.stringify(message)}\n\n`;
    this.context.counters.bytesOut += Buffer.byteLength(frame);
    this.res.write(frame);
  }

  endStream(): void {
    this.context.streams.delete(this);
    this.res.end();
    this.finish(200);
  }

  keepAlive(): void {
    if (!this.done) this.res.write(': keepalive\n\n');
  }

  /** Emits the access record once, when the answer is complete. */
  finish(status: number): void {
    if (this.done) return;
    this.done = true;
    if (status >= 400) this.context.counters.errors += 1;
    const onAccess = this.context.onAccess;
    if (onAccess === undefined) return;
    onAccess({
      at: this.at,
      httpMethod: this.req.method ?? '',
      mcpMethod: this.mcpMethod,
      toolName: this.toolName,
      status,
      rpcErrorCode: this.rpcErrorCode,
      latencyMs: performance.now() - this.startedAt,
      sessionId: this.sessionId,
    });
  }

  /** A plain HTTP error with a JSON-RPC error body (as the SDK's transport answers). */
  reject(
    status: number,
    message: string,
    headers?: Record<string, string>,
    code: number = TRANSPORT_ERROR,
  ): void {
    const body = `{"jsonrpc":"2.0","error":{"code":${code},"message":${JSON.stringify(message)}},"id":null}`;
    const length = Buffer.byteLength(body);
    this.context.counters.bytesOut += length;
    this.res.writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': length,
    });
    this.res.end(body);
    this.finish(status);
  }

  /** Refuses the request without reading its body (the rest is drained, not parsed). */
  refuse(refusal: Refusal): void {
    this.req.resume();
    this.reject(refusal.status, refusal.message, refusal.headers, refusal.rpcCode);
  }
}
