// Messages from the child to client sessions: answers to the request that
// asked, progress to its request's POST (or the session's stream), a server
// request to a session able to answer it, notifications to the sessions that
// want them; and binding to the child's connection as it (re)starts.
import { errorResponse, type MultiplexerState, type Session } from './multiplexer-state.js';
import { resubscribeAll } from './subscriptions.js';
import {
  answerUnrouted,
  isRequest,
  RpcErrorCode,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type StdioConnection,
} from '../child/stdio-connection.js';
import type { SupervisorEvent } from '../child/supervisor.js';

/** Capability a client must declare to be asked a given server request. */
const REQUIRED_CAPABILITY: Record<string, string> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** Routes on `connection` from now on; requests waiting on an earlier one are failed. */
export function bindChild(state: MultiplexerState, connection: StdioConnection | undefined): void {
  if (connection === state.bound) return;
  if (state.bound !== undefined)
    failPending(state, 'the MCP server restarted; the request was lost');
  state.bound = connection;
  if (connection === undefined) return;
  connection.onmessage = state.onChildMessage;
  resubscribeAll(state, connection);
}

/** Follows the supervisor: a new connection when ready, failed requests when it stops. */
export function onSupervisorEvent(state: MultiplexerState, event: SupervisorEvent): void {
  if (event.type === 'ready') bindChild(state, event.connection);
  else if (state.bound?.closed) {
    // The supervisor closes the connection before it reports the exit.
    state.bound = undefined;
    failPending(
      state,
      event.type === 'exited' ? `the MCP server ${event.reason}` : 'the MCP server stopped',
    );
  }
}

/** Answers every request waiting on the child with an error: it is gone. */
function failPending(state: MultiplexerState, reason: string): void {
  for (const entry of state.pending.values()) {
    entry.session.inflight.delete(entry.clientId);
    entry.reply.deliver(errorResponse(entry.clientId, RpcErrorCode.UPSTREAM_UNAVAILABLE, reason));
  }
  state.pending.clear();
  for (const session of state.serverRequests.values()) session.serverRequests.clear();
  state.serverRequests.clear();
}

export function routeChildMessage(state: MultiplexerState, message: JsonRpcMessage): void {
  if (!('method' in message)) {
    // A response: to a client request (numeric ids are ours).
    const entry = typeof message.id === 'number' ? state.pending.get(message.id) : undefined;
    if (entry === undefined) return; // answer to a request cancelled or failed meanwhile
    state.pending.delete(entry.childId);
    entry.session.inflight.delete(entry.clientId);
    message.id = entry.clientId;
    entry.reply.deliver(message);
    return;
  }
  if (isRequest(message)) {
    routeServerRequest(state, message);
    return;
  }
  const params = message.params;
  switch (message.method) {
    case 'notifications/progress': {
      const token = params?.progressToken;
      const entry = typeof token === 'number' ? state.pending.get(token) : undefined;
      if (entry === undefined || entry.clientProgressToken === undefined) return;
      params!.progressToken = entry.clientProgressToken;
      if (!entry.reply.deliver(message)) entry.session.stream?.deliver(message);
      return;
    }
    case 'notifications/cancelled': {
      // The child gave up on a request it sent a client.
      const requestId = params?.requestId as JsonRpcId | undefined;
      const session = requestId === undefined ? undefined : state.serverRequests.get(requestId);
      if (session === undefined || requestId === undefined) return;
      state.serverRequests.delete(requestId);
      session.serverRequests.delete(requestId);
      session.stream?.deliver(message);
      return;
    }
    case 'notifications/resources/updated': {
      const uri = params?.uri;
      for (const session of state.sessions.values())
        if (typeof uri === 'string' && session.subscriptions.has(uri))
          session.stream?.deliver(message);
      return;
    }
    default:
      // list_changed, log messages and anything else: every session hears it.
      for (const session of state.sessions.values()) session.stream?.deliver(message);
  }
}

/**
 * Best effort: the most recently active session that declared the needed
 * capability and holds a GET stream; failing that, one with a request in
 * flight whose POST stream can carry it.
 */
function routeServerRequest(state: MultiplexerState, request: JsonRpcRequest): void {
  const capability = REQUIRED_CAPABILITY[request.method];
  const able = [...state.sessions.values()]
    .filter((session) => capability === undefined || capability in session.clientCapabilities)
    .sort((a, b) => b.lastActivity - a.lastActivity);
  const track = (session: Session): void => {
    state.serverRequests.set(request.id, session);
    session.serverRequests.add(request.id);
  };
  for (const session of able) {
    if (session.stream?.deliver(request)) return track(session);
  }
  for (const session of able) {
    for (const entry of session.inflight.values())
      if (entry.reply.deliver(request)) return track(session);
  }
  if (state.bound !== undefined) answerUnrouted(state.bound, request);
}
