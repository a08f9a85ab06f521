// The client sessions of one child: opening one from a client's initialize
// (answered from the child's handshake), ending one (its requests cancelled at
// the child), and ending those left idle.
import { randomUUID } from 'node:crypto';
import {
  errorResponse,
  persistSessions,
  type MultiplexerState,
  type Session,
} from './multiplexer-state.js';
import { negotiateProtocolVersion } from './protocol-version.js';
import type { OpenSessionResult } from './session-multiplexer.js';
import { releaseSubscriptions } from './subscriptions.js';
import { RpcErrorCode, type JsonRpcRequest } from '../child/stdio-connection.js';

/** A client's `initialize`: opens a session and answers from the child's handshake. */
export function openSession(state: MultiplexerState, request: JsonRpcRequest): OpenSessionResult {
  const child = state.upstream.initializeResult;
  if (state.closed || child === undefined || state.bound === undefined)
    return {
      ok: false,
      code: 'upstream_unavailable',
      message: 'the MCP server is not running (it may be restarting); retry shortly',
    };
  if (state.sessions.size >= state.maxSessions)
    return {
      ok: false,
      code: 'too_many_sessions',
      message: `this instance already has ${state.maxSessions} sessions; end one (DELETE) first`,
    };
  const params = request.params ?? {};
  const capabilities = params.capabilities;
  const now = Date.now();
  const session: Session = {
    id: randomUUID(),
    protocolVersion: negotiateProtocolVersion(params.protocolVersion, child.protocolVersion),
    clientCapabilities:
      typeof capabilities === 'object' && capabilities !== null
        ? (capabilities as Record<string, unknown>)
        : {},
    openedAt: now,
    lastActivity: now,
    stream: undefined,
    inflight: new Map(),
    serverRequests: new Set(),
    subscriptions: new Set(),
    closed: false,
  };
  state.sessions.set(session.id, session);
  persistSessions(state);
  const result: Record<string, unknown> = {
    protocolVersion: session.protocolVersion,
    capabilities: child.capabilities,
    serverInfo: child.serverInfo,
  };
  if (child.instructions !== undefined) result.instructions = child.instructions;
  return { ok: true, session, response: { jsonrpc: '2.0', id: request.id, result } };
}

/**
 * Ends a session: its in-flight requests are cancelled at the child, and
 * answered with `error` when given, else abandoned.
 */
export function closeSession(state: MultiplexerState, session: Session, error?: string): void {
  if (session.closed) return;
  session.closed = true;
  state.sessions.delete(session.id);
  persistSessions(state);
  for (const entry of session.inflight.values()) {
    state.pending.delete(entry.childId);
    // The child may stop the work: nobody is waiting for it any more.
    state.bound?.send({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: entry.childId, reason: 'the client session ended' },
    });
    if (error === undefined) entry.reply.abandon(entry.clientId);
    else
      entry.reply.deliver(errorResponse(entry.clientId, RpcErrorCode.UPSTREAM_UNAVAILABLE, error));
  }
  session.inflight.clear();
  for (const id of session.serverRequests) {
    state.serverRequests.delete(id);
    state.bound?.send(errorResponse(id, RpcErrorCode.INTERNAL_ERROR, 'the client session ended'));
  }
  session.serverRequests.clear();
  releaseSubscriptions(state, session);
  session.stream = undefined;
}

/** Closes sessions idle for `idleMs` with no stream and nothing in flight. */
export function sweepIdle(state: MultiplexerState, now: number, idleMs: number): number {
  let swept = 0;
  for (const session of state.sessions.values())
    if (
      now - session.lastActivity > idleMs &&
      session.stream === undefined &&
      session.inflight.size === 0
    ) {
      closeSession(state, session);
      swept += 1;
    }
  return swept;
}
