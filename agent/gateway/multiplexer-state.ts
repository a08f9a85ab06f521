// The session multiplexer's state, one typed object every part of it takes:
// the session table, the requests waiting on the child, the child requests
// waiting on a client, the subscription counts and the bound connection.
import type { Logger } from '../../core/logger.js';
import type {
  ClientSession,
  ReplyChannel,
  SessionMultiplexerOptions,
  SessionStore,
  Upstream,
} from './session-multiplexer.js';
import type {
  JsonRpcError,
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcResponse,
  StdioConnection,
} from '../child/stdio-connection.js';

export interface Session extends ClientSession {
  /** Client request id → its pending entry. */
  inflight: Map<JsonRpcId, Pending>;
  /** Ids of child requests this session was asked to answer. */
  serverRequests: Set<JsonRpcId>;
  subscriptions: Set<string>;
  closed: boolean;
}

export interface Pending {
  childId: number;
  clientId: JsonRpcId;
  session: Session;
  reply: ReplyChannel;
  /** The client's own progress token, when it asked for progress. */
  clientProgressToken: string | number | undefined;
}

export interface MultiplexerState {
  readonly upstream: Upstream;
  readonly maxSessions: number;
  readonly store: SessionStore | undefined;
  readonly logger: Logger | undefined;
  readonly sessions: Map<string, Session>;
  /** Child-side request id (which is also the child-side progress token) → pending. */
  readonly pending: Map<number, Pending>;
  /** Child request id → the session asked to answer it. */
  readonly serverRequests: Map<JsonRpcId, Session>;
  /** Resource URI → number of sessions subscribed to it. */
  readonly subscribers: Map<string, number>;
  /** The child connection messages are routed on; undefined while it (re)starts. */
  bound: StdioConnection | undefined;
  /** What the bound connection's onmessage is set to (set once, by the factory). */
  onChildMessage: (message: JsonRpcMessage) => void;
  closed: boolean;
}

export function createMultiplexerState(options: SessionMultiplexerOptions): MultiplexerState {
  const state: MultiplexerState = {
    upstream: options.upstream,
    maxSessions: options.maxSessions ?? 1_000,
    store: options.store,
    logger: options.logger,
    sessions: new Map(),
    pending: new Map(),
    serverRequests: new Map(),
    subscribers: new Map(),
    bound: undefined,
    onChildMessage: () => undefined,
    closed: false,
  };
  // Sessions of a previous agent whose child this one took over: their clients
  // carry on with the same session id, as if nothing happened.
  for (const saved of options.store?.load() ?? []) {
    state.sessions.set(saved.id, {
      ...saved,
      lastActivity: Date.now(),
      stream: undefined,
      inflight: new Map(),
      serverRequests: new Set(),
      subscriptions: new Set(saved.subscriptions),
      closed: false,
    });
    for (const uri of saved.subscriptions)
      state.subscribers.set(uri, (state.subscribers.get(uri) ?? 0) + 1);
  }
  return state;
}

/** Writes every session to the store after a change (open, close, subscription). */
export function persistSessions(state: MultiplexerState): void {
  if (state.closed) return; // the agent is ending them all: the last save comes from close()
  state.store?.save(
    [...state.sessions.values()].map((session) => ({
      id: session.id,
      protocolVersion: session.protocolVersion,
      clientCapabilities: { ...session.clientCapabilities },
      openedAt: session.openedAt,
      subscriptions: [...session.subscriptions],
    })),
  );
}

export function errorResponse(id: JsonRpcId, code: number, message: string): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message } satisfies JsonRpcError };
}
