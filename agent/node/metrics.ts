// The agent's Prometheus metrics: one registry per agent (never prom-client's
// global one: tests run several agents in one process), the counters each part
// is handed as a small interface of its own, and the listener serving /metrics.
// Labels stay bounded: type names (the admin's mcp_types), MCP methods from a
// known list, outcomes, states; never an instance, user or session id.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { NotFoundError as RowNotFoundError, SlonikError } from 'slonik';
import { isDatabaseUnavailable } from '../../core/db/unavailable.js';
import type { WarmPoolMetrics } from '../child/warm-pool.js';
import type { AccessRecord } from '../gateway/gateway.js';
import type { InstanceMetrics, RuntimeState } from '../instance/instance-runtime.js';
import type { GrpcCallMetrics } from './grpc-service.js';
import type { LogShipperMetrics } from './log-shipper.js';
import type { ReconcilerMetrics } from './reconciler.js';
import type { UsageMetrics } from './usage.js';

/** Client-to-server methods of the MCP specification (2025-11-25); any other is `other`. */
const MCP_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
]);

const RUNTIME_STATES: readonly RuntimeState[] = [
  'starting',
  'running',
  'stopping',
  'stopped',
  'failed',
];

export type McpOutcome = 'ok' | 'rpc_error' | 'client_error' | 'server_error' | 'cancelled';

/**
 * The `method` label: the JSON-RPC method when the specification names it;
 * `http_get`, `http_post`, `http_delete` for a request that carried none (a
 * stream opened, a session ended, answers to the server's own requests).
 */
export function methodLabel(record: Pick<AccessRecord, 'mcpMethod' | 'httpMethod'>): string {
  if (record.mcpMethod !== undefined)
    return MCP_METHODS.has(record.mcpMethod) ? record.mcpMethod : 'other';
  const http = record.httpMethod.toLowerCase();
  return http === 'get' || http === 'post' || http === 'delete' ? `http_${http}` : 'http_other';
}

/** 499 is the gateway's "the client went away"; a JSON-RPC error inside a 2xx is `rpc_error`. */
export function outcomeLabel(record: Pick<AccessRecord, 'status' | 'rpcErrorCode'>): McpOutcome {
  if (record.status === 499) return 'cancelled';
  if (record.status >= 500) return 'server_error';
  if (record.status >= 400) return 'client_error';
  return record.rpcErrorCode === undefined ? 'ok' : 'rpc_error';
}

/** A PostgreSQL error code (SQLSTATE): the server refused the statement. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** What of a failed pool call is the database's: unreachable, or a statement it refused. */
export function databaseErrorKind(error: unknown): 'unavailable' | 'query' | undefined {
  if (isDatabaseUnavailable(error)) return 'unavailable';
  // A row not found is an answer, not an error of the database.
  if (error instanceof RowNotFoundError) return undefined;
  if (error instanceof SlonikError) return 'query';
  const code = (error as { code?: unknown } | null)?.code;
  // Anything else is the caller's own error (thrown inside a transaction).
  return typeof code === 'string' && SQLSTATE.test(code) ? 'query' : undefined;
}

/** Everything the agent's parts count, and the registry it lands in. */
export interface AgentMetrics {
  readonly registry: Registry;
  readonly instances: InstanceMetrics;
  readonly warmPool: WarmPoolMetrics;
  readonly logShipper: LogShipperMetrics;
  readonly reconciler: ReconcilerMetrics;
  readonly grpc: GrpcCallMetrics;
  readonly usage: UsageMetrics;
  /** The database pool's onError: counted when the error is the database's. */
  databaseError(error: unknown): void;
  /** Where the instances-by-state gauge reads the runtimes at each scrape. */
  observeInstances(list: () => readonly { readonly state: RuntimeState }[]): void;
}

/** MCP requests through the gateways: counts by type, method and outcome, and latency. */
function requestMetrics(registry: Registry): InstanceMetrics['mcpRequest'] {
  const registers = [registry];
  const requests = new Counter({
    name: 'minimcp_mcp_requests_total',
    help: 'MCP requests answered by the instance gateways, by type, method and outcome.',
    labelNames: ['type', 'method', 'outcome'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'minimcp_mcp_request_duration_seconds',
    help: 'Time from an MCP request to its complete answer, by type and method.',
    labelNames: ['type', 'method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  // The CloudWatch agent drops histograms: the dashboard and the latency alarm read this.
  const latency = new Summary({
    name: 'minimcp_mcp_request_latency_seconds',
    help: 'Quantiles of MCP request latency over the last 5 minutes, all types and methods.',
    percentiles: [0.5, 0.95, 0.99],
    maxAgeSeconds: 300,
    ageBuckets: 5,
    registers,
  });
  return (type, record) => {
    const method = methodLabel(record);
    const seconds = record.latencyMs / 1000;
    requests.inc({ type, method, outcome: outcomeLabel(record) });
    duration.observe({ type, method }, seconds);
    latency.observe(seconds);
  };
}

/** Children started (cold or from the warm pool), restarted, and killed over their limits. */
function childMetrics(
  registry: Registry,
): Pick<AgentMetrics, 'usage'> & { childEvent: InstanceMetrics['childEvent'] } {
  const registers = [registry];
  const started = new Counter({
    name: 'minimcp_children_started_total',
    help: 'MCP server processes started for instances, by type and source (cold spawn or warm pool).',
    labelNames: ['type', 'source'] as const,
    registers,
  });
  const restarted = new Counter({
    name: 'minimcp_children_restarted_total',
    help: 'Restarts of MCP server processes that exited unexpectedly, by type.',
    labelNames: ['type'] as const,
    registers,
  });
  const killed = new Counter({
    name: 'minimcp_children_killed_total',
    help: 'MCP server processes killed over their resource limits, by type and limit.',
    labelNames: ['type', 'limit'] as const,
    registers,
  });
  return {
    childEvent(type, event) {
      if (event.type === 'spawned') started.inc({ type, source: event.warm ? 'warm' : 'cold' });
      else if (event.type === 'restarting') restarted.inc({ type });
    },
    usage: { childKilled: (type, limit) => killed.inc({ type, limit }) },
  };
}

/** The node's own work: warm pool, log shipping, database, reconcile passes, gRPC. */
function nodeMetrics(
  registry: Registry,
): Pick<AgentMetrics, 'warmPool' | 'logShipper' | 'reconciler' | 'grpc' | 'databaseError'> {
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const takes = counter(
    'minimcp_warm_pool_takes_total',
    'Instance starts that asked the warm pool, by type and result (hit or miss).',
    ['type', 'result'],
  );
  const shipped = counter('minimcp_log_lines_shipped_total', 'Log lines written to mcp_logs.');
  const spooled = counter(
    'minimcp_log_lines_spooled_total',
    'Log lines written to the disk spool while the database was unreachable.',
  );
  const dropped = counter(
    'minimcp_log_lines_dropped_total',
    'Log lines dropped: the queue or the disk spool was full, or the database refused them.',
  );
  const dbErrors = counter(
    'minimcp_database_errors_total',
    'Database calls of the agent that failed, by kind (unavailable or query).',
    ['kind'],
  );
  const grpcCalls = counter(
    'minimcp_grpc_requests_total',
    'Calls to the agent gRPC service, by method and status code.',
    ['method', 'code'],
  );
  const passes = new Histogram({
    name: 'minimcp_reconcile_duration_seconds',
    help: 'Duration of reconcile passes, by outcome (ok or failed).',
    labelNames: ['outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  return {
    warmPool: { take: (type, hit) => takes.inc({ type, result: hit ? 'hit' : 'miss' }) },
    logShipper: {
      shipped: (lines) => shipped.inc(lines),
      spooled: (lines) => spooled.inc(lines),
      dropped: (lines) => dropped.inc(lines),
    },
    reconciler: {
      pass: (seconds, ok) => passes.observe({ outcome: ok ? 'ok' : 'failed' }, seconds),
    },
    grpc: { call: (method, code) => grpcCalls.inc({ method, code }) },
    databaseError(error) {
      const kind = databaseErrorKind(error);
      if (kind) dbErrors.inc({ kind });
    },
  };
}

export function createAgentMetrics(): AgentMetrics {
  const registry = new Registry();
  let listInstances: () => readonly { readonly state: RuntimeState }[] = () => [];
  new Gauge({
    name: 'minimcp_instances',
    help: 'Instances this agent holds a runtime for, by state (read at each scrape).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const counts = new Map<RuntimeState, number>();
      for (const state of RUNTIME_STATES) counts.set(state, 0);
      for (const { state } of listInstances()) counts.set(state, (counts.get(state) ?? 0) + 1);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  const children = childMetrics(registry);
  return {
    registry,
    instances: { mcpRequest: requestMetrics(registry), childEvent: children.childEvent },
    usage: children.usage,
    ...nodeMetrics(registry),
    observeInstances(list) {
      listInstances = list;
    },
  };
}

export interface MetricsListener {
  /** host:port it listens on (the port chosen when 0 was asked). */
  readonly address: string;
  close(): Promise<void>;
}

/** Serves the registry at GET /metrics in the Prometheus text format. */
export async function startMetricsListener(
  registry: Registry,
  at: { host: string; port: number },
  onError: (error: unknown) => void,
): Promise<MetricsListener> {
  const server: Server = createServer((request, response) => {
    if ((request.url ?? '/').split('?')[0] !== '/metrics') {
      response
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('the metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    registry.metrics().then(
      (text) =>
        response
          .writeHead(200, { 'content-type': registry.contentType })
          .end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => {
        onError(error);
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics not collected\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const refused = (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `MINIMCP_METRICS_LISTEN ${at.host}:${at.port}: cannot listen (${error.code ?? error.message}); choose another HOST:PORT, or off`,
          { cause: error },
        ),
      );
    server.once('error', refused);
    server.listen(at.port, at.host, () => {
      server.off('error', refused);
      resolve();
    });
  });
  server.on('error', onError);
  const { port } = server.address() as AddressInfo;
  return {
    address: `${at.host.includes(':') ? `[${at.host}]` : at.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
