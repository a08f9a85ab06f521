// Messages from a client session to the child: requests get a child-side id
// (and progress token) and wait in the pending table; answers to the child's
// own requests, cancellations and other notifications pass on.
import {
  errorResponse,
  type MultiplexerState,
  type Pending,
  type Session,
} from './multiplexer-state.js';
import type { ReplyChannel } from './session-multiplexer.js';
import { subscribe, unsubscribe } from './subscriptions.js';
import {
  isRequest,
  RpcErrorCode,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
} from '../child/stdio-connection.js';

export function routeClientMessage(
  state: MultiplexerState,
  session: Session,
  message: JsonRpcMessage,
  reply?: ReplyChannel,
): void {
  session.lastActivity = Date.now();
  if (!('method' in message)) {
    // The client's answer to a request the child sent it.
    const id = message.id;
    if (id === null || state.serverRequests.get(id) !== session) return;
    state.serverRequests.delete(id);
    session.serverRequests.delete(id);
    state.bound?.send(message);
    return;
  }
  if (isRequest(message)) {
    if (reply === undefined) throw new Error('a client request needs a reply channel');
    routeClientRequest(state, session, message, reply);
    return;
  }
  switch (message.method) {
    case 'notifications/initialized':
      return; // the agent initialized the child long ago
    case 'notifications/cancelled': {
      const requestId = message.params?.requestId as JsonRpcId | undefined;
      const entry = requestId === undefined ? undefined : session.inflight.get(requestId);
      if (entry === undefined) return; // unknown or already answered: ignore, per the spec
      state.pending.delete(entry.childId);
      session.inflight.delete(entry.clientId);
      message.params!.requestId = entry.childId;
      state.bound?.send(message);
      entry.reply.abandon(entry.clientId);
      return;
    }
    default:
      state.bound?.send(message);
  }
}

/** A client request: answered here (initialize again, a shared unsubscribe) or forwarded. */
function routeClientRequest(
  state: MultiplexerState,
  session: Session,
  request: JsonRpcRequest,
  reply: ReplyChannel,
): void {
  switch (request.method) {
    case 'initialize':
      reply.deliver(
        errorResponse(request.id, RpcErrorCode.INVALID_REQUEST, 'session already initialized'),
      );
      return;
    case 'resources/subscribe':
      subscribe(state, session, request.params?.uri);
      break;
    case 'resources/unsubscribe':
      if (unsubscribe(state, session, request.params?.uri) === 'others-remain') {
        reply.deliver({ jsonrpc: '2.0', id: request.id, result: {} });
        return;
      }
      break;
  }
  forwardRequest(state, session, request, reply);
}

function forwardRequest(
  state: MultiplexerState,
  session: Session,
  request: JsonRpcRequest,
  reply: ReplyChannel,
): void {
  const clientId = request.id;
  const connection = state.bound;
  if (connection === undefined || connection.closed) {
    reply.deliver(
      errorResponse(
        clientId,
        RpcErrorCode.UPSTREAM_UNAVAILABLE,
        'the MCP server is not running (it may be restarting); retry shortly',
      ),
    );
    return;
  }
  if (session.inflight.has(clientId)) {
    reply.deliver(
      errorResponse(
        clientId,
        RpcErrorCode.INVALID_REQUEST,
        `request id ${JSON.stringify(clientId)} is already in use in this session`,
      ),
    );
    return;
  }
  const childId = connection.nextId();
  const meta = request.params?._meta as Record<string, unknown> | undefined;
  const token = meta?.progressToken;
  const entry: Pending = {
    childId,
    clientId,
    session,
    reply,
    clientProgressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
  };
  // The child-side id doubles as the child-side progress token: unique, and
  // one lookup routes both the answer and the progress.
  if (entry.clientProgressToken !== undefined) meta!.progressToken = childId;
  request.id = childId;
  state.pending.set(childId, entry);
  session.inflight.set(clientId, entry);
  if (!connection.send(request)) {
    state.pending.delete(childId);
    session.inflight.delete(clientId);
    reply.deliver(
      errorResponse(
        clientId,
        RpcErrorCode.UPSTREAM_UNAVAILABLE,
        'the MCP server is not accepting input (closed or not reading it)',
      ),
    );
  }
}
