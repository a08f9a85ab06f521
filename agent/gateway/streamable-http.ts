// The Streamable HTTP transport at /mcp: POST carries client messages (answered
// as JSON or an SSE stream), GET opens a session's server-to-client stream,
// DELETE ends a session. Requests arrive here already admitted by the guard.
// @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#streamable-http
import { readJsonRpcBody, type JsonRpcBody } from './json-rpc-body.js';
import type { Exchange } from './exchange.js';
import { isSupportedProtocolVersion } from './protocol-version.js';
import type { ClientSession, SessionMultiplexer } from './session-multiplexer.js';
import { RpcErrorCode, type JsonRpcRequest } from '../child/stdio-connection.js';

export interface StreamableHttp {
  post(exchange: Exchange): void;
  get(exchange: Exchange): void;
  delete(exchange: Exchange): void;
}

/** What the transport's handlers share. */
interface StreamableHttpState {
  readonly mux: SessionMultiplexer;
  readonly maxBodyBytes: number;
}

/** Same code the legacy transport answers an unknown session with. */
const SESSION_NOT_FOUND = -32001;

export function createStreamableHttp(state: StreamableHttpState): StreamableHttp {
  return {
    post: (exchange) => handlePost(state, exchange),
    get: (exchange) => handleGet(state, exchange),
    delete: (exchange) => handleDelete(state, exchange),
  };
}

function handlePost(state: StreamableHttpState, exchange: Exchange): void {
  const { req } = exchange;
  const accept = req.headers.accept;
  if (accept !== undefined && !accept.includes('*/*')) {
    exchange.acceptJson = accept.includes('application/json');
    exchange.acceptSse = accept.includes('text/event-stream');
    if (!exchange.acceptJson && !exchange.acceptSse) {
      exchange.refuse({
        status: 406,
        message: 'Not Acceptable: accept application/json and/or text/event-stream',
      });
      return;
    }
  }
  readJsonRpcBody(exchange, state.maxBodyBytes, (body) => onPostBody(state, exchange, body));
}

function onPostBody(state: StreamableHttpState, exchange: Exchange, body: JsonRpcBody): void {
  const { mux } = state;
  const { messages, batch, requests, initialize } = body;
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
    openSession(state, exchange, initialize as JsonRpcRequest);
    return;
  }

  const session = sessionOf(state, exchange);
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
      exchange.context.streams.delete(exchange);
      exchange.finish(499);
    }
  });
  for (const message of messages) mux.fromClient(session, message, exchange);
}

function openSession(
  state: StreamableHttpState,
  exchange: Exchange,
  request: JsonRpcRequest,
): void {
  const opened = state.mux.openSession(request);
  if (!opened.ok) {
    exchange.reject(503, opened.message, { 'retry-after': '1' });
    return;
  }
  exchange.sessionId = opened.session.id;
  exchange.remaining = 1;
  exchange.deliver(opened.response);
}

/** The session a non-initialize request names, or undefined with an answer already sent. */
function sessionOf(state: StreamableHttpState, exchange: Exchange): ClientSession | undefined {
  const headers = exchange.req.headers;
  const id = headers['mcp-session-id'];
  if (typeof id !== 'string' || id.length === 0) {
    exchange.reject(400, 'Bad Request: Mcp-Session-Id header is required');
    return undefined;
  }
  exchange.sessionId = id;
  const session = state.mux.getSession(id);
  if (session === undefined) {
    exchange.reject(
      404,
      'Session not found: initialize a new session',
      undefined,
      SESSION_NOT_FOUND,
    );
    return undefined;
  }
  const version = headers['mcp-protocol-version'];
  if (typeof version === 'string' && !isSupportedProtocolVersion(version)) {
    exchange.reject(400, `Bad Request: unsupported MCP-Protocol-Version ${version}`);
    return undefined;
  }
  return session;
}

function handleGet(state: StreamableHttpState, exchange: Exchange): void {
  const { req, res } = exchange;
  req.resume();
  const accept = req.headers.accept;
  if (accept === undefined || !(accept.includes('text/event-stream') || accept.includes('*/*'))) {
    exchange.reject(406, 'Not Acceptable: a GET stream needs Accept: text/event-stream');
    return;
  }
  const session = sessionOf(state, exchange);
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
    exchange.context.streams.delete(exchange);
    exchange.finish(200);
  });
}

function handleDelete(state: StreamableHttpState, exchange: Exchange): void {
  exchange.req.resume();
  const session = sessionOf(state, exchange);
  if (session === undefined) return;
  const stream = session.stream as Exchange | undefined;
  state.mux.closeSession(session);
  if (stream !== undefined) stream.endStream();
  exchange.res.writeHead(200, { 'content-length': 0 });
  exchange.res.end();
  exchange.finish(200);
}
