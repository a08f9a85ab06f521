// The per-port MCP gateway: one node:http server per instance speaking MCP
// Streamable HTTP at /mcp (POST, GET stream, DELETE) and the older HTTP+SSE
// transport at /sse + /messages (legacy-sse.ts), checking Host, Origin and the
// bearer token, and bridging client sessions to the child through the session
// multiplexer. It owns the port, its connections and its streams.
// @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#streamable-http
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { PortInUseError } from '../../core/errors.js';
import { createLegacySse, LEGACY_MESSAGES_PATH, LEGACY_SSE_PATH } from './legacy-sse.js';
import {
  createSessionMultiplexer,
  isSupportedProtocolVersion,
  type ClientChannel,
  type ClientSession,
  type ReplyChannel,
  type SessionStore,
  type Upstream,
} from './session-multiplexer.js';
import {
  isRequest,
  parseJsonRpcMessage,
  RpcErrorCode,
  type JsonRpcId,
  type JsonRpcMessage,
} from '../child/stdio-connection.js';

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

export interface GatewayOptions {
  port: number;
  /** Interface to listen on; the agent passes its node's bind address. */
  host?: string;
  /** SHA-256 (hex) of the instance's access token. */
  tokenHash: string;
  /**
   * Browser origins allowed to call (exact `scheme://host[:port]`). Default:
   * loopback origins (localhost, 127.0.0.1, [::1]) on any port. Requests
   * without an Origin (non-browser clients) are always allowed.
   */
  allowedOrigins?: readonly string[];
  /**
   * Host names (no port; IPv6 in brackets) a request's Host header may name,
   * besides the loopback names, which are always allowed: protection against
   * DNS rebinding. Default: when the gateway listens on a loopback address,
   * loopback names only; on any other address, no check (the names clients
   * use for the node are not known here; pass the node's public host to check).
   */
  allowedHosts?: readonly string[];
  /** The child: its live connection and its handshake (the supervisor). */
  upstream: Upstream;
  /** Keeps client sessions across agent restarts (agent/gateway/session-store.ts). */
  sessionStore?: SessionStore;
  maxBodyBytes?: number;
  maxSessions?: number;
  /** Sessions with no stream and no activity for this long are ended. */
  sessionIdleMs?: number;
  /** SSE comment frames on idle GET streams, so intermediaries keep them open. */
  keepAliveIntervalMs?: number;
  onAccess?(record: AccessRecord): void;
}

export interface Gateway {
  readonly port: number;
  readonly sessionCount: number;
  /** Cumulative since the gateway started; the caller computes and flushes deltas. */
  counters(): GatewayCounters;
  /** After a token rotation: the old token is refused from the next request on. */
  setTokenHash(hash: string): void;
  /** Closes the port, every session and stream; idempotent. */
  close(): Promise<void>;
}

const MCP_PATH = '/mcp';
const NOT_FOUND_MESSAGE = `not found: the MCP endpoint is ${MCP_PATH} (or ${LEGACY_SSE_PATH} for the HTTP+SSE transport)`;
const MAX_BATCH = 100;
const CLOSE_GRACE_MS = 1_000;
const MAX_STREAM_BACKLOG_BYTES = 4 * 1024 * 1024;
/** What the SDK's transport answers HTTP-level refusals with (JSON-RPC "server error"). */
const TRANSPORT_ERROR = -32000;
const DEFAULTS = {
  host: '127.0.0.1',
  maxBodyBytes: 4 * 1024 * 1024,
  maxSessions: 1_000,
  sessionIdleMs: 30 * 60_000,
  keepAliveIntervalMs: 25_000,
};
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
/** A Host header: a name or IPv4 address, or a bracketed IPv6 address, and an optional port. */
const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/i;
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};
const CORS_ALLOW_HEADERS =
  'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id';
const CORS_EXPOSE_HEADERS = 'mcp-session-id, mcp-protocol-version, www-authenticate';

/** Opens the gateway on its port; rejects with PortInUseError when it is taken. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? DEFAULTS.host;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  /** The token's SHA-256 as bytes: what a presented token's digest is compared with. */
  let tokenDigest = Buffer.from(options.tokenHash, 'hex');
  const onAccess = options.onAccess;
  const allowedOrigins =
    options.allowedOrigins === undefined
      ? undefined
      : new Set(options.allowedOrigins.map((origin) => origin.toLowerCase()));
  const allowedHosts = hostAllowList(host, options.allowedHosts);
  // The Host and Origin answers depend only on the header and the fixed
  // options, and a client sends the same ones on every request: the last
  // allowed value of each skips the parse. (Not the token: it is a secret,
  // checked by digest on every request.)
  let lastAllowedHost: string | undefined;
  let lastAllowedOrigin: string | undefined;
  const maxSessions = options.maxSessions ?? DEFAULTS.maxSessions;
  const mux = createSessionMultiplexer({
    upstream: options.upstream,
    maxSessions,
    ...(options.sessionStore ? { store: options.sessionStore } : {}),
  });
  const counters: GatewayCounters = {
    requests: 0,
    errors: 0,
    bytesIn: 0,
    bytesOut: 0,
    lastAccessAt: undefined,
    droppedMessages: 0,
    sessions: 0,
    inFlight: 0,
  };
  /** Open server-to-client streams, to end them on close. */
  const streams = new Set<Exchange>();
  const legacy = createLegacySse({
    mux,
    counters,
    maxStreams: maxSessions,
    maxBacklogBytes: MAX_STREAM_BACKLOG_BYTES,
  });
  let closePromise: Promise<void> | undefined;

  /**
   * One HTTP request: its access record, and for a POST that carries
   * requests, the channel their answers take (JSON body, or an SSE stream once
   * the child sends something before the answer).
   */
  class Exchange implements ReplyChannel, ClientChannel {
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
          counters.droppedMessages += 1;
          return false;
        }
        this.writeEvent(message);
        return true;
      }
      if (message.error !== undefined) {
        counters.errors += 1;
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

    sendAnswers(answer: JsonRpcMessage | JsonRpcMessage[]): void {
      const body = JSON.stringify(answer);
      const length = Buffer.byteLength(body);
      counters.bytesOut += length;
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
      streams.add(this);
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
      counters.bytesOut += Buffer.byteLength(frame);
      this.res.write(frame);
    }

    endStream(): void {
      streams.delete(this);
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
      if (status >= 400) counters.errors += 1;
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
      counters.bytesOut += length;
      this.res.writeHead(status, {
        ...headers,
        'content-type': 'application/json',
        'content-length': length,
      });
      this.res.end(body);
      this.finish(status);
    }
  }

  const server = createServer({ noDelay: true, keepAliveTimeout: 65_000 }, onRequest);

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    counters.requests += 1;
    const exchange = new Exchange(req, res);
    counters.lastAccessAt = exchange.at;
    const headers = req.headers;
    // First: a rebinding attacker's page must learn nothing, not even a 404.
    if (allowedHosts !== undefined && !isAllowedHost(headers.host)) {
      req.resume();
      exchange.reject(403, `host ${headers.host ?? '(none)'} is not allowed`);
      return;
    }
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path !== MCP_PATH && path !== LEGACY_SSE_PATH && path !== LEGACY_MESSAGES_PATH) {
      req.resume();
      exchange.reject(404, NOT_FOUND_MESSAGE);
      return;
    }
    const origin = headers.origin;
    if (origin !== undefined) {
      if (!isAllowedOrigin(origin)) {
        req.resume();
        exchange.reject(403, `origin ${origin} is not allowed`);
        return;
      }
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-expose-headers', CORS_EXPOSE_HEADERS);
      res.setHeader('vary', 'Origin');
      if (req.method === 'OPTIONS') {
        // A browser's preflight carries no credentials; it only learns what it may send.
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, POST, DELETE',
          'access-control-allow-headers': CORS_ALLOW_HEADERS,
          'access-control-max-age': '600',
        });
        res.end();
        exchange.finish(204);
        return;
      }
    }
    const authFailure = checkBearer(headers.authorization);
    if (authFailure !== undefined) {
      req.resume();
      exchange.reject(401, authFailure.message, { 'www-authenticate': authFailure.challenge });
      return;
    }
    if (path === LEGACY_SSE_PATH) {
      if (req.method === 'GET') legacy.openStream(exchange);
      else rejectMethod(exchange, 'GET');
      return;
    }
    if (path === LEGACY_MESSAGES_PATH) {
      if (req.method !== 'POST') rejectMethod(exchange, 'POST');
      else
        readJsonBody(exchange, (body) => {
          const parsed = parseMessages(exchange, body);
          if (parsed !== undefined) legacy.postMessages(exchange, parsed.messages);
        });
      return;
    }
    switch (req.method) {
      case 'POST':
        handlePost(exchange);
        return;
      case 'GET':
        handleGet(exchange);
        return;
      case 'DELETE':
        handleDelete(exchange);
        return;
      default:
        rejectMethod(exchange, 'GET, POST, DELETE');
    }
  }

  function rejectMethod(exchange: Exchange, allow: string): void {
    exchange.req.resume();
    exchange.reject(405, `method ${exchange.req.method} not allowed`, { allow });
  }

  function isAllowedHost(header: string | undefined): boolean {
    if (header !== undefined && header === lastAllowedHost) return true;
    const match = header === undefined ? null : HOST_HEADER.exec(header);
    if (match === null || !allowedHosts!.has(match[1]!.toLowerCase())) return false;
    lastAllowedHost = header;
    return true;
  }

  function isAllowedOrigin(origin: string): boolean {
    if (origin === lastAllowedOrigin) return true;
    if (!checkOrigin(origin)) return false;
    lastAllowedOrigin = origin;
    return true;
  }

  function checkOrigin(origin: string): boolean {
    if (allowedOrigins !== undefined) return allowedOrigins.has(origin.toLowerCase());
    try {
      const url = new URL(origin);
      return (
        (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK_HOSTS.has(url.hostname)
      );
    } catch {
      return false; // "null" or garbage: deny on any doubt
    }
  }

  function checkBearer(
    header: string | undefined,
  ): { message: string; challenge: string } | undefined {
    if (header === undefined || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ')
      return {
        message: 'missing bearer token: send Authorization: Bearer <access_token>',
        challenge: 'Bearer realm="minimcp"',
      };
    // Compare digests, not tokens: constant time, and no plaintext kept. The
    // same SHA-256 as core/tokens.ts's hashToken, compared as raw bytes.
    const presented = createHash('sha256').update(header.slice(7).trim(), 'utf8').digest();
    if (presented.length !== tokenDigest.length || !timingSafeEqual(presented, tokenDigest))
      return {
        message: 'invalid access token',
        challenge: 'Bearer realm="minimcp", error="invalid_token"',
      };
    return undefined;
  }

  /** The session a non-initialize request names, or an answer already sent. */
  function sessionOf(exchange: Exchange): ClientSession | undefined {
    const headers = exchange.req.headers;
    const id = headers['mcp-session-id'];
    if (typeof id !== 'string' || id.length === 0) {
      exchange.reject(400, 'Bad Request: Mcp-Session-Id header is required');
      return undefined;
    }
    exchange.sessionId = id;
    const session = mux.getSession(id);
    if (session === undefined) {
      exchange.reject(404, 'Session not found: initialize a new session', undefined, -32001);
      return undefined;
    }
    const version = headers['mcp-protocol-version'];
    if (typeof version === 'string' && !isSupportedProtocolVersion(version)) {
      exchange.reject(400, `Bad Request: unsupported MCP-Protocol-Version ${version}`);
      return undefined;
    }
    return session;
  }

  function handlePost(exchange: Exchange): void {
    const { req } = exchange;
    const accept = req.headers.accept;
    if (accept !== undefined && !accept.includes('*/*')) {
      exchange.acceptJson = accept.includes('application/json');
      exchange.acceptSse = accept.includes('text/event-stream');
      if (!exchange.acceptJson && !exchange.acceptSse) {
        req.resume();
        exchange.reject(406, 'Not Acceptable: accept application/json and/or text/event-stream');
        return;
      }
    }
    readJsonBody(exchange, (body) => onPostBody(exchange, body));
  }

  /** Reads a POST's JSON body up to the size limit; refusals (415, 413) are answered here. */
  function readJsonBody(exchange: Exchange, onBody: (body: Buffer | undefined) => void): void {
    const { req } = exchange;
    const contentType = req.headers['content-type'];
    if (
      contentType !== 'application/json' &&
      (contentType === undefined || !/^application\/json\s*(;|$)/i.test(contentType))
    ) {
      req.resume();
      exchange.reject(415, 'Unsupported Media Type: Content-Type must be application/json');
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (declared > maxBodyBytes) {
      rejectTooLarge(exchange);
      return;
    }
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (exchange.done) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        rejectTooLarge(exchange);
        return;
      }
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
    req.on('end', () => {
      if (exchange.done) return;
      counters.bytesIn += size;
      onBody(chunks !== undefined ? Buffer.concat(chunks, size) : first);
    });
    req.on('error', () => exchange.finish(499));
  }

  function rejectTooLarge(exchange: Exchange): void {
    // Answer now and close the connection rather than read the rest.
    exchange.reject(413, `Payload Too Large: the limit is ${maxBodyBytes} bytes`, {
      connection: 'close',
    });
    exchange.req.resume();
  }

  /**
   * The JSON-RPC messages of a POST body (one, or a batch), or undefined with
   * a 400 already answered. Notes the first message's method and tool name
   * for the access record.
   */
  function parseMessages(
    exchange: Exchange,
    body: Buffer | undefined,
  ):
    | {
        messages: JsonRpcMessage[];
        /** Sent as a JSON array (answered as one, even with one element). */
        batch: boolean;
        requests: number;
        initialize: JsonRpcMessage | undefined;
      }
    | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body === undefined ? '' : body.toString('utf8'));
    } catch {
      exchange.reject(
        400,
        'Parse error: the body is not JSON',
        undefined,
        RpcErrorCode.PARSE_ERROR,
      );
      return;
    }
    const batch = Array.isArray(parsed);
    const items = batch ? (parsed as unknown[]) : [parsed];
    if (items.length === 0 || items.length > MAX_BATCH) {
      exchange.reject(
        400,
        `Invalid Request: a batch holds 1 to ${MAX_BATCH} messages`,
        undefined,
        RpcErrorCode.INVALID_REQUEST,
      );
      return;
    }
    const messages: JsonRpcMessage[] = [];
    let requests = 0;
    let initialize: JsonRpcMessage | undefined;
    for (const item of items) {
      const message = parseJsonRpcMessage(item);
      if (message === undefined) {
        exchange.reject(
          400,
          'Invalid Request: not a JSON-RPC 2.0 message',
          undefined,
          RpcErrorCode.INVALID_REQUEST,
        );
        return;
      }
      if (isRequest(message)) {
        requests += 1;
        if (message.method === 'initialize') initialize = message;
      }
      messages.push(message);
    }
    const head = messages[0]!;
    if ('method' in head) {
      exchange.mcpMethod = head.method;
      if (head.method === 'tools/call' && typeof head.params?.name === 'string')
        exchange.toolName = head.params.name;
    }
    return { messages, batch, requests, initialize };
  }

  function onPostBody(exchange: Exchange, body: Buffer | undefined): void {
    const parsed = parseMessages(exchange, body);
    if (parsed === undefined) return;
    const { messages, batch, requests, initialize } = parsed;
    if (initialize !== undefined) {
      if (messages.length > 1) {
        exchange.reject(
          400,
          'Invalid Request: initialize must be sent alone',
          undefined,
          RpcErrorCode.INVALID_REQUEST,
        );
        return;
      }
      openSession(exchange, initialize as Parameters<typeof mux.openSession>[0]);
      return;
    }

    const session = sessionOf(exchange);
    if (session === undefined) return;
    if (requests === 0) {
      // Notifications and answers only: accepted, nothing to return.
      for (const message of messages) mux.fromClient(session, message);
      exchange.res.writeHead(202, { 'mcp-session-id': session.id });
      exchange.res.end();
      exchange.finish(202);
      return;
    }
    exchange.remaining = requests;
    if (batch) exchange.collected = [];
    exchange.res.once('close', () => {
      if (!exchange.done) {
        streams.delete(exchange);
        exchange.finish(499);
      }
    });
    for (const message of messages) mux.fromClient(session, message, exchange);
  }

  function openSession(exchange: Exchange, request: Parameters<typeof mux.openSession>[0]): void {
    const opened = mux.openSession(request);
    if (!opened.ok) {
      exchange.reject(503, opened.message, { 'retry-after': '1' });
      return;
    }
    exchange.sessionId = opened.session.id;
    exchange.remaining = 1;
    exchange.deliver(opened.response);
  }

  function handleGet(exchange: Exchange): void {
    const { req, res } = exchange;
    req.resume();
    const accept = req.headers.accept;
    if (accept === undefined || !(accept.includes('text/event-stream') || accept.includes('*/*'))) {
      exchange.reject(406, 'Not Acceptable: a GET stream needs Accept: text/event-stream');
      return;
    }
    const session = sessionOf(exchange);
    if (session === undefined) return;
    if (session.stream !== undefined) {
      exchange.reject(409, 'Conflict: this session already has a GET stream open');
      return;
    }
    exchange.mcpMethod = undefined;
    session.stream = exchange;
    exchange.startStream();
    res.once('close', () => {
      if (session.stream === exchange) session.stream = undefined;
      streams.delete(exchange);
      exchange.finish(200);
    });
  }

  function handleDelete(exchange: Exchange): void {
    exchange.req.resume();
    const session = sessionOf(exchange);
    if (session === undefined) return;
    const stream = session.stream as Exchange | undefined;
    mux.closeSession(session);
    if (stream !== undefined) stream.endStream();
    exchange.res.writeHead(200, { 'content-length': 0 });
    exchange.res.end();
    exchange.finish(200);
  }

  const timer = setInterval(() => {
    for (const stream of streams) stream.keepAlive();
    legacy.keepAlive();
    const now = Date.now();
    const idleMs = options.sessionIdleMs ?? DEFAULTS.sessionIdleMs;
    mux.sweepIdle(now, idleMs);
    legacy.sweepIdle(now, idleMs);
  }, options.keepAliveIntervalMs ?? DEFAULTS.keepAliveIntervalMs);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      clearInterval(timer);
      mux.close();
      if (error.code === 'EADDRINUSE')
        reject(
          new PortInUseError(`port ${options.port} on ${host} is already in use`, {
            port: options.port,
            host,
          }),
        );
      else reject(error);
    };
    server.once('error', onError);
    server.listen({ port: options.port, host, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    get sessionCount() {
      return mux.sessionCount;
    },
    counters: () => ({ ...counters, sessions: mux.sessionCount, inFlight: mux.inFlight }),
    setTokenHash(hash) {
      tokenDigest = Buffer.from(hash, 'hex');
    },
    close() {
      closePromise ??= new Promise<void>((resolve) => {
        clearInterval(timer);
        try {
          mux.close('the MCP instance is shutting down');
          legacy.close();
          for (const stream of [...streams]) stream.endStream();
        } finally {
          // Answers just written get a moment to leave before sockets are cut.
          const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
          server.close(() => {
            clearTimeout(cut);
            resolve();
          });
          server.closeIdleConnections();
        }
      });
      return closePromise;
    },
  };
}

/**
 * The host names a Host header may name, or undefined for no check. Loopback
 * names are always allowed: a rebinding page's requests carry its own name.
 */
function hostAllowList(
  bindHost: string,
  configured: readonly string[] | undefined,
): ReadonlySet<string> | undefined {
  if (configured === undefined) return isLoopbackAddress(bindHost) ? LOOPBACK_HOSTS : undefined;
  const names = new Set(LOOPBACK_HOSTS);
  for (const name of configured) {
    const lower = name.toLowerCase();
    names.add(isIP(lower) === 6 ? `[${lower}]` : lower);
  }
  return names;
}

function isLoopbackAddress(address: string): boolean {
  const bare = address.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return (
    bare === 'localhost' ||
    bare === '::1' ||
    (isIP(bare) === 4 && bare.startsWith('127.')) ||
    bare === '::ffff:127.0.0.1'
  );
}
