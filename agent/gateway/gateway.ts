// The per-port MCP gateway: one node:http server per instance speaking MCP
// Streamable HTTP at /mcp (streamable-http.ts, POST, GET stream, DELETE) and the
// older HTTP+SSE transport at /sse + /messages (legacy-sse.ts), admitting each
// request through the guard (Host, Origin, bearer token) and bridging client
// sessions to the child through the session multiplexer. This factory wires
// those parts; it owns the keep-alive timer and hands the port to http-server.ts.
// @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#streamable-http
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../core/logger.js';
import {
  Exchange,
  MAX_STREAM_BACKLOG_BYTES,
  type AccessRecord,
  type ExchangeContext,
  type GatewayCounters,
} from './exchange.js';
import { createGuard, type Guard } from './guard.js';
import { listenHttpServer } from './http-server.js';
import { readJsonRpcBody } from './json-rpc-body.js';
import {
  createLegacySse,
  LEGACY_MESSAGES_PATH,
  LEGACY_SSE_PATH,
  type LegacySse,
} from './legacy-sse.js';
import {
  createSessionMultiplexer,
  type SessionMultiplexer,
  type SessionStore,
  type Upstream,
} from './session-multiplexer.js';
import { createStreamableHttp, type StreamableHttp } from './streamable-http.js';

export type { AccessRecord, GatewayCounters } from './exchange.js';

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
  /** Where failed cleanup steps are reported (the instance's logger). */
  logger?: Logger;
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
const DEFAULTS = {
  host: '127.0.0.1',
  maxBodyBytes: 4 * 1024 * 1024,
  maxSessions: 1_000,
  sessionIdleMs: 30 * 60_000,
  keepAliveIntervalMs: 25_000,
};
const CORS_ALLOW_HEADERS =
  'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id';
const CORS_EXPOSE_HEADERS = 'mcp-session-id, mcp-protocol-version, www-authenticate';

/** The parts a request is routed through once the gateway is built. */
interface Routes {
  readonly context: ExchangeContext;
  readonly guard: Guard;
  readonly streamable: StreamableHttp;
  readonly legacy: LegacySse;
  readonly maxBodyBytes: number;
}

/** Opens the gateway on its port; rejects with PortInUseError when it is taken. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? DEFAULTS.host;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const maxSessions = options.maxSessions ?? DEFAULTS.maxSessions;
  const guard = createGuard({
    bindHost: host,
    tokenHash: options.tokenHash,
    ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
    ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
  });
  const mux = createSessionMultiplexer({
    upstream: options.upstream,
    maxSessions,
    ...(options.sessionStore ? { store: options.sessionStore } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const context: ExchangeContext = {
    counters: {
      requests: 0,
      errors: 0,
      bytesIn: 0,
      bytesOut: 0,
      lastAccessAt: undefined,
      droppedMessages: 0,
      sessions: 0,
      inFlight: 0,
    },
    streams: new Set(),
    onAccess: options.onAccess,
  };
  const routes: Routes = {
    context,
    guard,
    streamable: createStreamableHttp({ mux, maxBodyBytes }),
    legacy: createLegacySse({
      mux,
      counters: context.counters,
      maxStreams: maxSessions,
      maxBacklogBytes: MAX_STREAM_BACKLOG_BYTES,
    }),
    maxBodyBytes,
  };
  const timer = startKeepAlive(routes, mux, options);
  const listening = await listenHttpServer({
    port: options.port,
    host,
    onRequest: (req, res) => onRequest(routes, req, res),
  }).catch((error: unknown) => {
    clearInterval(timer);
    mux.close();
    throw error;
  });
  let closePromise: Promise<void> | undefined;
  return {
    port: listening.port,
    get sessionCount() {
      return mux.sessionCount;
    },
    counters: (): GatewayCounters => ({
      ...context.counters,
      sessions: mux.sessionCount,
      inFlight: mux.inFlight,
    }),
    setTokenHash: (hash) => guard.setTokenHash(hash),
    close() {
      closePromise ??= (async () => {
        clearInterval(timer);
        try {
          mux.close('the MCP instance is shutting down');
          routes.legacy.close();
          for (const stream of [...context.streams]) stream.endStream();
        } finally {
          await listening.close();
        }
      })();
      return closePromise;
    },
  };
}

/** Keep-alive frames on idle streams, and the sweep of idle sessions, on one timer. */
function startKeepAlive(
  routes: Routes,
  mux: SessionMultiplexer,
  options: GatewayOptions,
): NodeJS.Timeout {
  const idleMs = options.sessionIdleMs ?? DEFAULTS.sessionIdleMs;
  const timer = setInterval(() => {
    for (const stream of routes.context.streams) stream.keepAlive();
    routes.legacy.keepAlive();
    const now = Date.now();
    mux.sweepIdle(now, idleMs);
    routes.legacy.sweepIdle(now, idleMs);
  }, options.keepAliveIntervalMs ?? DEFAULTS.keepAliveIntervalMs);
  timer.unref();
  return timer;
}

function onRequest(routes: Routes, req: IncomingMessage, res: ServerResponse): void {
  const { counters } = routes.context;
  counters.requests += 1;
  const exchange = new Exchange(routes.context, req, res);
  counters.lastAccessAt = exchange.at;
  const headers = req.headers;
  // First: a rebinding attacker's page must learn nothing, not even a 404.
  const hostAllowed = routes.guard.host(headers.host);
  if (!hostAllowed.ok) return exchange.refuse(hostAllowed);
  const url = req.url ?? '';
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  if (path !== MCP_PATH && path !== LEGACY_SSE_PATH && path !== LEGACY_MESSAGES_PATH)
    return exchange.refuse({ status: 404, message: NOT_FOUND_MESSAGE });
  const origin = headers.origin;
  if (origin !== undefined) {
    const originAllowed = routes.guard.origin(origin);
    if (!originAllowed.ok) return exchange.refuse(originAllowed);
    if (answerCors(exchange, origin)) return;
  }
  const bearer = routes.guard.bearer(headers.authorization);
  if (!bearer.ok) return exchange.refuse(bearer);
  route(routes, exchange, path);
}

/**
 * Sets the CORS headers of an allowed browser origin; answers a preflight
 * (true), which carries no credentials and only learns what it may send.
 */
function answerCors(exchange: Exchange, origin: string): boolean {
  const { req, res } = exchange;
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('access-control-expose-headers', CORS_EXPOSE_HEADERS);
  res.setHeader('vary', 'Origin');
  if (req.method !== 'OPTIONS') return false;
  res.writeHead(204, {
    'access-control-allow-methods': 'GET, POST, DELETE',
    'access-control-allow-headers': CORS_ALLOW_HEADERS,
    'access-control-max-age': '600',
  });
  res.end();
  exchange.finish(204);
  return true;
}

/** An admitted request to its transport and method. */
function route(routes: Routes, exchange: Exchange, path: string): void {
  const method = exchange.req.method;
  if (path === LEGACY_SSE_PATH) {
    if (method === 'GET') routes.legacy.openStream(exchange);
    else rejectMethod(exchange, 'GET');
    return;
  }
  if (path === LEGACY_MESSAGES_PATH) {
    if (method !== 'POST') rejectMethod(exchange, 'POST');
    else
      readJsonRpcBody(exchange, routes.maxBodyBytes, (body) =>
        routes.legacy.postMessages(exchange, body.messages),
      );
    return;
  }
  switch (method) {
    case 'POST':
      return routes.streamable.post(exchange);
    case 'GET':
      return routes.streamable.get(exchange);
    case 'DELETE':
      return routes.streamable.delete(exchange);
    default:
      rejectMethod(exchange, 'GET, POST, DELETE');
  }
}

function rejectMethod(exchange: Exchange, allow: string): void {
  exchange.refuse({
    status: 405,
    message: `method ${exchange.req.method} not allowed`,
    headers: { allow },
  });
}
