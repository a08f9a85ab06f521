// Many client sessions onto the one MCP session the supervisor holds with a
// child: answers each client's initialize from the child's cached result,
// rewrites request ids and progress tokens to child-side ones and routes the
// answers, cancellations, progress and server-to-client requests back. It
// knows nothing of HTTP: clients are reached through `ClientChannel`s.
import { randomUUID } from 'node:crypto';
import {
  answerUnrouted,
  isRequest,
  RpcErrorCode,
  type JsonRpcError,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type StdioConnection,
} from '../child/stdio-connection.js';
import type { ChildInitializeResult, SupervisorEvent } from '../child/supervisor.js';

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
}

interface Session extends ClientSession {
  /** Client request id → its pending entry. */
  inflight: Map<JsonRpcId, Pending>;
  /** Ids of child requests this session was asked to answer. */
  serverRequests: Set<JsonRpcId>;
  subscriptions: Set<string>;
  closed: boolean;
}

interface Pending {
  childId: number;
  clientId: JsonRpcId;
  session: Session;
  reply: ReplyChannel;
  /** The client's own progress token, when it asked for progress. */
  clientProgressToken: string | number | undefined;
}

/** Capability a client must declare to be asked a given server request. */
const REQUIRED_CAPABILITY: Record<string, string> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/**
 * The MCP revisions a client may ask for: the SDK's SUPPORTED_PROTOCOL_VERSIONS
 * (a unit test keeps the two equal). Copied rather than imported: the SDK's
 * types.js builds every zod schema of the protocol on import, ~7 MB of the
 * agent's resident memory for one list of strings.
 */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = [
  '2025-11-25',
  '2025-06-18',
  '2025-03-26',
  '2024-11-05',
  '2024-10-07',
];
const SUPPORTED_VERSIONS = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);

export function isSupportedProtocolVersion(version: string): boolean {
  return SUPPORTED_VERSIONS.has(version);
}

/**
 * The version a client session speaks: the child's own when the client asks
 * for it or anything newer (the child cannot speak newer); an older version the
 * client asks for when it is one MCP defines (messages pass through unchanged,
 * and revisions only add); otherwise the child's, and the client decides.
 */
export function negotiateProtocolVersion(requested: unknown, childVersion: string): string {
  if (typeof requested !== 'string' || requested >= childVersion) return childVersion;
  return SUPPORTED_VERSIONS.has(requested) ? requested : childVersion;
}

export function createSessionMultiplexer(options: SessionMultiplexerOptions): SessionMultiplexer {
  const { upstream } = options;
  const maxSessions = options.maxSessions ?? 1_000;
  const sessions = new Map<string, Session>();
  /** Child-side request id (which is also the child-side progress token) → pending. */
  const pending = new Map<number, Pending>();
  /** Child request id → the session asked to answer it. */
  const serverRequests = new Map<JsonRpcId, Session>();
  /** Resource URI → number of sessions subscribed to it. */
  const subscribers = new Map<string, number>();
  let bound: StdioConnection | undefined;
  let closed = false;

  // Sessions of a previous agent whose child this one took over: their clients
  // carry on with the same session id, as if nothing happened.
  for (const saved of options.store?.load() ?? []) {
    sessions.set(saved.id, {
      ...saved,
      lastActivity: Date.now(),
      stream: undefined,
      inflight: new Map(),
      serverRequests: new Set(),
      subscriptions: new Set(saved.subscriptions),
      closed: false,
    });
    for (const uri of saved.subscriptions) subscribers.set(uri, (subscribers.get(uri) ?? 0) + 1);
  }
  const persist = (): void => {
    if (closed) return; // the agent is ending them all: the last save comes from close()
    options.store?.save(
      [...sessions.values()].map((session) => ({
        id: session.id,
        protocolVersion: session.protocolVersion,
        clientCapabilities: { ...session.clientCapabilities },
        openedAt: session.openedAt,
        subscriptions: [...session.subscriptions],
      })),
    );
  };

  const errorResponse = (id: JsonRpcId, code: number, message: string): JsonRpcResponse => ({
    jsonrpc: '2.0',
    id,
    error: { code, message } satisfies JsonRpcError,
  });

  /** Answers every request waiting on the child with an error: it is gone. */
  const failPending = (reason: string): void => {
    for (const entry of pending.values()) {
      entry.session.inflight.delete(entry.clientId);
      entry.reply.deliver(errorResponse(entry.clientId, RpcErrorCode.UPSTREAM_UNAVAILABLE, reason));
    }
    pending.clear();
    for (const session of serverRequests.values()) session.serverRequests.clear();
    serverRequests.clear();
  };

  const bind = (connection: StdioConnection | undefined): void => {
    if (connection === bound) return;
    if (bound !== undefined) failPending('the MCP server restarted; the request was lost');
    bound = connection;
    if (connection === undefined) return;
    connection.onmessage = onChildMessage;
    // A new child knows nothing of the old one's subscriptions.
    for (const uri of subscribers.keys())
      requestQuietly(connection, 'resources/subscribe', { uri });
  };

  const unsubscribeUpstream = upstream.subscribe((event) => {
    if (event.type === 'ready') bind(event.connection);
    else if (bound?.closed) {
      // The supervisor closes the connection before it reports the exit.
      bound = undefined;
      failPending(
        event.type === 'exited' ? `the MCP server ${event.reason}` : 'the MCP server stopped',
      );
    }
  });
  bind(upstream.connection);

  function onChildMessage(message: JsonRpcMessage): void {
    if (!('method' in message)) {
      // A response: to a client request (numeric ids are ours).
      const entry = typeof message.id === 'number' ? pending.get(message.id) : undefined;
      if (entry === undefined) return; // answer to a request cancelled or failed meanwhile
      pending.delete(entry.childId);
      entry.session.inflight.delete(entry.clientId);
      message.id = entry.clientId;
      entry.reply.deliver(message);
      return;
    }
    if (isRequest(message)) {
      routeServerRequest(message);
      return;
    }
    const params = message.params;
    switch (message.method) {
      case 'notifications/progress': {
        const token = params?.progressToken;
        const entry = typeof token === 'number' ? pending.get(token) : undefined;
        if (entry === undefined || entry.clientProgressToken === undefined) return;
        params!.progressToken = entry.clientProgressToken;
        if (!entry.reply.deliver(message)) entry.session.stream?.deliver(message);
        return;
      }
      case 'notifications/cancelled': {
        // The child gave up on a request it sent a client.
        const requestId = params?.requestId as JsonRpcId | undefined;
        const session = requestId === undefined ? undefined : serverRequests.get(requestId);
        if (session === undefined || requestId === undefined) return;
        serverRequests.delete(requestId);
        session.serverRequests.delete(requestId);
        session.stream?.deliver(message);
        return;
      }
      case 'notifications/resources/updated': {
        const uri = params?.uri;
        for (const session of sessions.values())
          if (typeof uri === 'string' && session.subscriptions.has(uri))
            session.stream?.deliver(message);
        return;
      }
      default:
        // list_changed, log messages and anything else: every session hears it.
        for (const session of sessions.values()) session.stream?.deliver(message);
    }
  }

  /**
   * Best effort: the most recently active session that declared the needed
   * capability and holds a GET stream; failing that, one with a request in
   * flight whose POST stream can carry it.
   */
  function routeServerRequest(request: JsonRpcRequest): void {
    const capability = REQUIRED_CAPABILITY[request.method];
    const able = [...sessions.values()]
      .filter((session) => capability === undefined || capability in session.clientCapabilities)
      .sort((a, b) => b.lastActivity - a.lastActivity);
    for (const session of able) {
      if (session.stream?.deliver(request)) return track(session);
    }
    for (const session of able) {
      for (const entry of session.inflight.values())
        if (entry.reply.deliver(request)) return track(session);
    }
    if (bound !== undefined) answerUnrouted(bound, request);

    function track(session: Session): void {
      serverRequests.set(request.id, session);
      session.serverRequests.add(request.id);
    }
  }

  function forwardRequest(session: Session, request: JsonRpcRequest, reply: ReplyChannel): void {
    const clientId = request.id;
    const connection = bound;
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
      clientProgressToken:
        typeof token === 'string' || typeof token === 'number' ? token : undefined,
    };
    // The child-side id doubles as the child-side progress token: unique, and
    // one lookup routes both the answer and the progress.
    if (entry.clientProgressToken !== undefined) meta!.progressToken = childId;
    request.id = childId;
    pending.set(childId, entry);
    session.inflight.set(clientId, entry);
    if (!connection.send(request)) {
      pending.delete(childId);
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

  function fromClient(session: Session, message: JsonRpcMessage, reply?: ReplyChannel): void {
    session.lastActivity = Date.now();
    if (!('method' in message)) {
      // The client's answer to a request the child sent it.
      const id = message.id;
      if (id === null || serverRequests.get(id) !== session) return;
      serverRequests.delete(id);
      session.serverRequests.delete(id);
      bound?.send(message);
      return;
    }
    if (isRequest(message)) {
      if (reply === undefined) throw new Error('a client request needs a reply channel');
      switch (message.method) {
        case 'initialize':
          reply.deliver(
            errorResponse(message.id, RpcErrorCode.INVALID_REQUEST, 'session already initialized'),
          );
          return;
        case 'resources/subscribe':
          subscribe(session, message.params?.uri);
          break;
        case 'resources/unsubscribe':
          if (unsubscribe(session, message.params?.uri) === 'others-remain') {
            reply.deliver({ jsonrpc: '2.0', id: message.id, result: {} });
            return;
          }
          break;
      }
      forwardRequest(session, message, reply);
      return;
    }
    switch (message.method) {
      case 'notifications/initialized':
        return; // the agent initialized the child long ago
      case 'notifications/cancelled': {
        const requestId = message.params?.requestId as JsonRpcId | undefined;
        const entry = requestId === undefined ? undefined : session.inflight.get(requestId);
        if (entry === undefined) return; // unknown or already answered: ignore, per the spec
        pending.delete(entry.childId);
        session.inflight.delete(entry.clientId);
        message.params!.requestId = entry.childId;
        bound?.send(message);
        entry.reply.abandon(entry.clientId);
        return;
      }
      default:
        bound?.send(message);
    }
  }

  function subscribe(session: Session, uri: unknown): void {
    if (typeof uri !== 'string' || session.subscriptions.has(uri)) return;
    session.subscriptions.add(uri);
    subscribers.set(uri, (subscribers.get(uri) ?? 0) + 1);
    persist();
  }

  /** Drops one session's subscription; the child hears of it only from the last one. */
  function unsubscribe(session: Session, uri: unknown): 'last' | 'others-remain' | 'unknown' {
    if (typeof uri !== 'string' || !session.subscriptions.delete(uri)) return 'unknown';
    persist();
    const remaining = (subscribers.get(uri) ?? 1) - 1;
    if (remaining > 0) {
      subscribers.set(uri, remaining);
      return 'others-remain';
    }
    subscribers.delete(uri);
    return 'last';
  }

  function closeSession(session: Session, error?: string): void {
    if (session.closed) return;
    session.closed = true;
    sessions.delete(session.id);
    persist();
    for (const entry of session.inflight.values()) {
      pending.delete(entry.childId);
      // The child may stop the work: nobody is waiting for it any more.
      bound?.send({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: entry.childId, reason: 'the client session ended' },
      });
      if (error === undefined) entry.reply.abandon(entry.clientId);
      else
        entry.reply.deliver(
          errorResponse(entry.clientId, RpcErrorCode.UPSTREAM_UNAVAILABLE, error),
        );
    }
    session.inflight.clear();
    for (const id of session.serverRequests) {
      serverRequests.delete(id);
      bound?.send(errorResponse(id, RpcErrorCode.INTERNAL_ERROR, 'the client session ended'));
    }
    session.serverRequests.clear();
    for (const uri of [...session.subscriptions])
      if (unsubscribe(session, uri) === 'last' && bound !== undefined)
        requestQuietly(bound, 'resources/unsubscribe', { uri });
    session.stream = undefined;
  }

  return {
    openSession(request) {
      const child = upstream.initializeResult;
      if (closed || child === undefined || bound === undefined)
        return {
          ok: false,
          code: 'upstream_unavailable',
          message: 'the MCP server is not running (it may be restarting); retry shortly',
        };
      if (sessions.size >= maxSessions)
        return {
          ok: false,
          code: 'too_many_sessions',
          message: `this instance already has ${maxSessions} sessions; end one (DELETE) first`,
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
      sessions.set(session.id, session);
      persist();
      const result: Record<string, unknown> = {
        protocolVersion: session.protocolVersion,
        capabilities: child.capabilities,
        serverInfo: child.serverInfo,
      };
      if (child.instructions !== undefined) result.instructions = child.instructions;
      return { ok: true, session, response: { jsonrpc: '2.0', id: request.id, result } };
    },
    getSession: (id) => sessions.get(id),
    fromClient: (session, message, reply) => fromClient(session as Session, message, reply),
    closeSession: (session, error) => closeSession(session as Session, error),
    sweepIdle(now, idleMs) {
      let swept = 0;
      for (const session of sessions.values())
        if (
          now - session.lastActivity > idleMs &&
          session.stream === undefined &&
          session.inflight.size === 0
        ) {
          closeSession(session);
          swept += 1;
        }
      return swept;
    },
    get sessionCount() {
      return sessions.size;
    },
    get inFlight() {
      return pending.size;
    },
    close(error) {
      if (closed) return;
      closed = true;
      try {
        for (const session of [...sessions.values()]) closeSession(session, error);
        options.store?.save([]);
      } finally {
        unsubscribeUpstream();
        if (bound !== undefined && bound.onmessage === onChildMessage)
          bound.onmessage = (message) => answerUnrouted(bound!, message);
      }
    },
  };
}

/**
 * A request of the agent's own whose answer does not matter (re-subscribing
 * after a restart, unsubscribing after the last session left): a failure only
 * means the child no longer needs it.
 */
function requestQuietly(
  connection: StdioConnection,
  method: string,
  params: Record<string, unknown>,
): void {
  connection.request(method, params, 30_000).catch(() => undefined);
}
