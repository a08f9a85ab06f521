// Many client sessions onto the one MCP session the supervisor holds with a
// child: answers each client's initialize from the child's cached result,
// rewrites request ids and progress tokens to child-side ones and routes the
// answers, cancellations, progress and server-to-client requests back. It
// knows nothing of HTTP: clients are reached through `ClientChannel`s. This
// module holds the contract and wires the parts: the session table
// (session-table.ts), routing either way (client-routing.ts, child-routing.ts)
// and subscriptions (subscriptions.ts), over one state (multiplexer-state.ts).
import type { Logger } from '../../core/logger.js';
import { bindChild, onSupervisorEvent, routeChildMessage } from './child-routing.js';
import { routeClientMessage } from './client-routing.js';
import { createMultiplexerState, type Session } from './multiplexer-state.js';
import { closeSession, openSession, sweepIdle } from './session-table.js';
import {
  answerUnrouted,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type StdioConnection,
} from '../child/stdio-connection.js';
import type { ChildInitializeResult, SupervisorEvent } from '../child/supervisor.js';

export {
  isSupportedProtocolVersion,
  negotiateProtocolVersion,
  SUPPORTED_PROTOCOL_VERSIONS,
} from './protocol-version.js';

/** What the multiplexer needs of the supervisor (which satisfies it). */
export interface Upstream {
  /** The live connection to the child; undefined while it (re)starts. */
  readonly connection: StdioConnection | undefined;
  readonly initializeResult: ChildInitializeResult | undefined;
  subscribe(listener: (event: SupervisorEvent) => void): () => void;
}

/** A way to reach a client: a session's GET stream. */
export interface ClientChannel {
  /** Delivers one message; false when the channel cannot carry it now. */
  deliver(message: JsonRpcMessage): boolean;
}

/** Where the answer to one client request goes: the POST that carried it. */
export interface ReplyChannel extends ClientChannel {
  /** The request with this client id will get no answer (cancelled, session ended). */
  abandon(clientId: JsonRpcId): void;
}

export interface ClientSession {
  readonly id: string;
  readonly protocolVersion: string;
  readonly clientCapabilities: Readonly<Record<string, unknown>>;
  readonly openedAt: number;
  /** Epoch ms of the last message from this client. */
  lastActivity: number;
  /** The server-to-client stream (HTTP GET), when the client holds one open. */
  stream: ClientChannel | undefined;
}

export type OpenSessionResult =
  | { ok: true; session: ClientSession; response: JsonRpcResponse }
  | { ok: false; code: 'upstream_unavailable' | 'too_many_sessions'; message: string };

export interface SessionMultiplexer {
  /** A client's `initialize`: opens a session and answers from the child's handshake. */
  openSession(request: JsonRpcRequest): OpenSessionResult;
  getSession(id: string): ClientSession | undefined;
  /**
   * Routes one message from a client. A request's answer (or its error) goes
   * to `reply`, possibly before this returns.
   */
  fromClient(session: ClientSession, message: JsonRpcMessage, reply?: ReplyChannel): void;
  /**
   * Ends a session: its in-flight requests are cancelled at the child, and
   * answered with `error` when given (the agent ended it), else abandoned
   * (the client ended it and expects nothing).
   */
  closeSession(session: ClientSession, error?: string): void;
  /** Closes sessions idle for `idleMs` with no stream and nothing in flight. */
  sweepIdle(now: number, idleMs: number): number;
  readonly sessionCount: number;
  /** Requests waiting for the child. */
  readonly inFlight: number;
  /** Ends every session, answering what is in flight with `error`. */
  close(error?: string): void;
}

/** What a client session needs to outlive the agent (agent/gateway/session-store.ts keeps it). */
export interface PersistedSession {
  id: string;
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  openedAt: number;
  subscriptions: string[];
}

export interface SessionStore {
  /** Sessions a previous agent left for this instance, to go on as they were. */
  load(): PersistedSession[];
  /** Called with every session after each change (open, close, subscription). */
  save(sessions: PersistedSession[]): void;
}

export interface SessionMultiplexerOptions {
  upstream: Upstream;
  maxSessions?: number;
  /** Where sessions are kept across agent restarts; unset: in memory only. */
  store?: SessionStore;
  /** Where failed cleanup steps (an unsubscribe at the child) are reported. */
  logger?: Logger;
}

export function createSessionMultiplexer(options: SessionMultiplexerOptions): SessionMultiplexer {
  const state = createMultiplexerState(options);
  state.onChildMessage = (message) => routeChildMessage(state, message);
  const unsubscribeUpstream = options.upstream.subscribe((event) =>
    onSupervisorEvent(state, event),
  );
  bindChild(state, options.upstream.connection);
  return {
    openSession: (request) => openSession(state, request),
    getSession: (id) => state.sessions.get(id),
    fromClient: (session, message, reply) =>
      routeClientMessage(state, session as Session, message, reply),
    closeSession: (session, error) => closeSession(state, session as Session, error),
    sweepIdle: (now, idleMs) => sweepIdle(state, now, idleMs),
    get sessionCount() {
      return state.sessions.size;
    },
    get inFlight() {
      return state.pending.size;
    },
    close(error) {
      if (state.closed) return;
      state.closed = true;
      try {
        for (const session of [...state.sessions.values()]) closeSession(state, session, error);
        options.store?.save([]);
      } finally {
        unsubscribeUpstream();
        const bound = state.bound;
        if (bound !== undefined && bound.onmessage === state.onChildMessage)
          bound.onmessage = (message) => answerUnrouted(bound, message);
      }
    },
  };
}
