// The older MCP HTTP+SSE transport, served beside Streamable HTTP: GET /sse
// opens a client's stream and names the URL to POST to; POSTs there are
// answered 202 and everything for the client goes out on that stream. It owns
// those streams; each one, once initialized, is a client session of the multiplexer.
// @see https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSupportedProtocolVersion } from './protocol-version.js';
import type {
  ClientChannel,
  ClientSession,
  ReplyChannel,
  SessionMultiplexer,
} from './session-multiplexer.js';
import {
  isRequest,
  RpcErrorCode,
  type JsonRpcId,
  type JsonRpcMessage,
} from '../child/stdio-connection.js';

export const LEGACY_SSE_PATH = '/sse';
export const LEGACY_MESSAGES_PATH = '/messages';

/**
 * One HTTP request the gateway has admitted (Host, Origin and token checked,
 * a POST's body read and parsed): what this transport needs of it.
 */
export interface LegacyExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  sessionId: string | undefined;
  rpcErrorCode: number | undefined;
  /** Answers with an HTTP error and a JSON-RPC error body; emits the access record. */
  reject(status: number, message: string, headers?: Record<string, string>, code?: number): void;
  /** Emits the access record, once. */
  finish(status: number): void;
}

/** The gateway's counters this transport adds to. */
export interface LegacyCounters {
  errors: number;
  bytesOut: number;
  droppedMessages: number;
}

export interface LegacySseOptions {
  mux: SessionMultiplexer;
  counters: LegacyCounters;
  /** Open streams at most, initialized or not. */
  maxStreams: number;
  /** Unsent bytes on a stream beyond which notifications are dropped (answers never are). */
  maxBacklogBytes: number;
}

export interface LegacySse {
  /** GET /sse. */
  openStream(exchange: LegacyExchange): void;
  /** POST /messages?sessionId=…, with the body's messages. */
  postMessages(exchange: LegacyExchange, messages: JsonRpcMessage[]): void;
  keepAlive(): void;
  /** Ends streams that never sent initialize within `idleMs`. */
  sweepIdle(now: number, idleMs: number): void;
  readonly streamCount: number;
  /** Ends every stream; run after the multiplexer has answered what was in flight. */
  close(): void;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};
const ACCEPTED = 'Accepted';
/** Same code the Streamable HTTP side answers an unknown session with. */
const SESSION_NOT_FOUND = -32001;

export function createLegacySse(options: LegacySseOptions): LegacySse {
  const { mux, counters, maxStreams, maxBacklogBytes } = options;
  /** Legacy session id (the one in the endpoint URL) → its stream. */
  const streams = new Map<string, LegacyStream>();

  /** A client's GET /sse: its session's only way back, for answers too. */
  class LegacyStream implements ClientChannel {
    readonly id = randomUUID();
    readonly openedAt = Date.now();
    session: ClientSession | undefined = undefined;
    closed = false;

    constructor(readonly exchange: LegacyExchange) {}

    deliver(message: JsonRpcMessage): boolean {
      if (this.closed) return false;
      // A client that does not read its stream loses notifications rather
      // than growing the agent's memory; answers are always written.
      if ('method' in message && this.exchange.res.writableLength > maxBacklogBytes) {
        counters.droppedMessages += 1;
        return false;
      }
      this.write('message', JSON.stringify(message));
      return true;
    }

    write(event: string, data: string): void {
      const frame = `event: ${event}\ndata: ${data}\n\n`;
      counters.bytesOut += Buffer.byteLength(frame);
      this.exchange.res.write(frame);
    }

    /** Ends the session with the stream: its requests still in flight are cancelled. */
    release(): void {
      if (this.closed) return;
      this.closed = true;
      streams.delete(this.id);
      try {
        if (this.session !== undefined) mux.closeSession(this.session);
      } finally {
        this.exchange.finish(200);
      }
    }

    end(): void {
      this.release();
      this.exchange.res.end();
    }
  }

  /**
   * The requests of one POST: their answers go out on the stream, and the
   * POST's access record is emitted once all are answered, so it carries the
   * latency and error code of the answer rather than of the 202.
   */
  class PostReply implements ReplyChannel {
    private lost = false;

    constructor(
      readonly stream: LegacyStream,
      readonly exchange: LegacyExchange,
      private remaining: number,
    ) {}

    deliver(message: JsonRpcMessage): boolean {
      if ('method' in message) return this.stream.deliver(message);
      if (message.error !== undefined) {
        counters.errors += 1;
        this.exchange.rpcErrorCode ??= message.error.code;
      }
      const written = this.stream.deliver(message);
      this.settle(written);
      return written;
    }

    abandon(_clientId: JsonRpcId): void {
      this.settle(!this.stream.closed);
    }

    private settle(delivered: boolean): void {
      if (!delivered) this.lost = true;
      this.remaining -= 1;
      // 499: the client went away before its answer.
      if (this.remaining === 0) this.exchange.finish(this.lost ? 499 : 202);
    }
  }

  function accept(exchange: LegacyExchange): void {
    counters.bytesOut += ACCEPTED.length;
    exchange.res.writeHead(202, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': ACCEPTED.length,
    });
    exchange.res.end(ACCEPTED);
  }

  /** The stream a POST names in its query, or an answer already sent. */
  function streamOf(exchange: LegacyExchange): LegacyStream | undefined {
    const { req } = exchange;
    const id = new URL(req.url ?? '', 'http://gateway').searchParams.get('sessionId');
    if (id === null || id.length === 0) {
      exchange.reject(
        400,
        `Bad Request: the sessionId query parameter is required; open a stream with GET ${LEGACY_SSE_PATH} and POST to the URL of its endpoint event`,
      );
      return undefined;
    }
    exchange.sessionId = id;
    const stream = streams.get(id);
    if (stream === undefined) {
      exchange.reject(
        404,
        `Session not found: open a new stream with GET ${LEGACY_SSE_PATH}`,
        undefined,
        SESSION_NOT_FOUND,
      );
      return undefined;
    }
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !isSupportedProtocolVersion(version)) {
      exchange.reject(400, `Bad Request: unsupported MCP-Protocol-Version ${version}`);
      return undefined;
    }
    return stream;
  }

  return {
    openStream(exchange) {
      const { req, res } = exchange;
      req.resume();
      const acceptHeader = req.headers.accept;
      if (
        acceptHeader !== undefined &&
        !acceptHeader.includes('text/event-stream') &&
        !acceptHeader.includes('*/*')
      ) {
        exchange.reject(406, 'Not Acceptable: the stream needs Accept: text/event-stream');
        return;
      }
      if (streams.size >= maxStreams) {
        exchange.reject(
          503,
          `this instance already has ${maxStreams} SSE streams open; close one first`,
          { 'retry-after': '1' },
        );
        return;
      }
      const stream = new LegacyStream(exchange);
      exchange.sessionId = stream.id;
      streams.set(stream.id, stream);
      res.once('close', () => stream.release());
      res.writeHead(200, SSE_HEADERS);
      // Relative: the client resolves it against the URL it opened, so it
      // works behind a proxy that rewrites the host.
      stream.write('endpoint', `${LEGACY_MESSAGES_PATH}?sessionId=${stream.id}`);
    },

    postMessages(exchange, messages) {
      const stream = streamOf(exchange);
      if (stream === undefined) return;
      let requests = 0;
      let initialize: JsonRpcMessage | undefined;
      for (const message of messages)
        if (isRequest(message)) {
          requests += 1;
          if (message.method === 'initialize') initialize = message;
        }

      if (stream.session === undefined) {
        if (initialize === undefined || messages.length > 1) {
          exchange.reject(
            400,
            initialize === undefined
              ? 'Bad Request: send initialize first'
              : 'Invalid Request: initialize must be sent alone',
            undefined,
            RpcErrorCode.INVALID_REQUEST,
          );
          return;
        }
        const opened = mux.openSession(initialize as Parameters<typeof mux.openSession>[0]);
        if (!opened.ok) {
          exchange.reject(503, opened.message, { 'retry-after': '1' });
          return;
        }
        stream.session = opened.session;
        opened.session.stream = stream;
        accept(exchange);
        stream.deliver(opened.response);
        exchange.finish(202);
        return;
      }

      const session = stream.session;
      accept(exchange);
      if (requests === 0) {
        for (const message of messages) mux.fromClient(session, message);
        exchange.finish(202);
        return;
      }
      // A second initialize lands here too: the multiplexer refuses it on the stream.
      const reply = new PostReply(stream, exchange, requests);
      for (const message of messages) mux.fromClient(session, message, reply);
    },

    keepAlive() {
      for (const stream of streams.values()) stream.exchange.res.write(': keepalive\n\n');
    },

    sweepIdle(now, idleMs) {
      for (const stream of [...streams.values()])
        if (stream.session === undefined && now - stream.openedAt > idleMs) stream.end();
    },

    get streamCount() {
      return streams.size;
    },

    close() {
      for (const stream of [...streams.values()]) stream.end();
    },
  };
}
