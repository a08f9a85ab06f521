// The host agent, wired: node lease and registration, orphan cleanup, log
// shipper, reconciler, gRPC server, heartbeat and usage sampler. `close()`
// stops it cleanly (children stopped, ports released, instances marked
// disconnected with an event, logs flushed, node marked down).
import { chmod, mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEnvelopeCipher, type EnvelopeCipher } from '../core/crypto/envelope.js';
import { createKeyProviderFromEnv } from '../core/crypto/provider-from-env.js';
import type { AgentConfig } from '../core/config.js';
import { listTypes } from '../core/db/mcp-types.js';
import { countPorts } from '../core/db/ports.js';
import { createDatabasePool, type DatabasePool } from '../core/db/pool.js';
import { setNodeStatus, type NodeRow } from '../core/db/nodes.js';
import type { Logger } from '../core/logger.js';
import type { TlsMaterial } from '../core/tls.js';
import { startAgentGrpcServer, type AgentGrpcServer } from './node/grpc-server.js';
import { startHeartbeat } from './node/heartbeat.js';
import { prepareLogPartitions, registerThisNode } from './node/node-registration.js';
import { agentTlsMaterial } from './node/node-tls.js';
import { createLogShipper, type LogShipper } from './node/log-shipper.js';
import { acquireNodeLease, type NodeLease } from './node/node-lease.js';
import { createReconciler, type Reconciler } from './node/reconciler.js';
import {
  createChildRegistry,
  sweepChildren,
  type ChildRegistry,
  type ChildSweep,
} from './child/child-registry.js';
import { pruneChildStdio } from './child/child-stdio.js';
import { createChildUsers, type ChildUsers } from './child/child-users.js';
import { createSurvivors, isReattachable, type Survivors } from './child/survivors.js';
import { isPoolable, resolveCommand } from './child/server-command.js';
import { startUsageSampler, usageOptions, type UsageSampler } from './node/usage.js';
import type { RuntimeDeps } from './instance/instance-runtime.js';
import { createWarmPool, type WarmPool, type WarmPoolEntry } from './child/warm-pool.js';
import { createAgentMetrics, startMetricsListener, type AgentMetrics } from './node/metrics.js';
import { createTeardown, type Teardown } from './teardown.js';

export const AGENT_VERSION = '0.1.0';

/** dist/ (or the repo root when run from source): built-in server scripts are relative to it. */
export const DEFAULT_SERVERS_ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
);

/**
 * The warm pool of the configured types that run a built-in script (a type's
 * own command never is pooled); undefined when no type is configured.
 */
async function startWarmPool(
  pool: DatabasePool,
  sizes: Readonly<Record<string, number>>,
  options: {
    serversRoot: string;
    cwd: string;
    registry: ChildRegistry;
    stdioRoot: string;
    users?: ChildUsers;
    logger: Logger;
    fillWhen: Promise<unknown>;
    metrics: AgentMetrics;
  },
): Promise<WarmPool | undefined> {
  if (Object.values(sizes).every((size) => size === 0)) return undefined;
  const types = new Map((await listTypes(pool)).map((type) => [type.name, type]));
  const entries: WarmPoolEntry[] = [];
  for (const [name, size] of Object.entries(sizes)) {
    const type = types.get(name);
    if (size === 0) continue;
    if (!type || !isPoolable(type)) {
      options.logger.warn(
        { type: name },
        'MINIMCP_WARM_POOL names a type that is not an active built-in script type; not pooled',
      );
      continue;
    }
    entries.push({ type: name, ...resolveCommand(type, options.serversRoot, name), size });
  }
  if (entries.length === 0) return undefined;
  return createWarmPool({
    entries,
    cwd: options.cwd,
    registry: options.registry,
    stdioRoot: options.stdioRoot,
    ...(options.users ? { users: options.users } : {}),
    fillWhen: options.fillWhen,
    metrics: options.metrics.warmPool,
    onDiagnostic: (message, context) => options.logger.warn(context, message),
  });
}

export interface RunningAgent {
  readonly node: NodeRow;
  readonly grpcAddress: string;
  readonly reconciler: Reconciler;
  readonly pool: DatabasePool;
  /** Pre-spawned children of built-in types; undefined when MINIMCP_WARM_POOL pools none. */
  readonly warmPool: WarmPool | undefined;
  /** host:port of the Prometheus listener (GET /metrics); undefined when MINIMCP_METRICS_LISTEN is off. */
  readonly metricsAddress: string | undefined;
  /** What /metrics serves, also when it is off (tests read histograms from it). */
  readonly metricsRegistry: AgentMetrics['registry'];
  /** Resolves when the agent stopped on its own (its node lease was lost). */
  readonly lost: Promise<void>;
  close(): Promise<void>;
}

export interface StartAgentOptions {
  config: AgentConfig;
  logger: Logger;
  /** Where built-in `server_script` paths resolve (default: dist/). */
  serversRoot?: string;
  /** Environment for the key provider (KMS_KEY_ID, MINIMCP_MASTER_KEY, ...). */
  env?: Record<string, string | undefined>;
  /** TLS material instead of MINIMCP_TLS_DIR (tests). */
  tls?: TlsMaterial;
}

/** Where this agent keeps its files, and the names it logs under. */
interface AgentPlace {
  readonly nodeName: string;
  readonly dataDir: string;
  /** Child records, stdio FIFOs, spool, sessions and instance folders of this node. */
  readonly stateDir: string;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
}

/** The node lease first (one agent per node name), then the pool. */
async function openDatabase(
  config: AgentConfig,
  place: AgentPlace,
  teardown: Teardown,
): Promise<{ lease: NodeLease; pool: DatabasePool }> {
  const lease = await acquireNodeLease({
    databaseUrl: config.DATABASE_URL,
    nodeName: place.nodeName,
    onDiagnostic: (m) => place.log.warn(m),
  });
  teardown.add('release the node lease', () => lease.release());
  const pool = await createDatabasePool(config.DATABASE_URL, {
    maximumPoolSize: config.MINIMCP_DB_POOL_SIZE,
    onError: place.metrics.databaseError,
  });
  teardown.add('close the database pool', () => pool.end());
  return { lease, pool };
}

/** Children's OS users (MINIMCP_CHILD_UIDS), with the folders they need to reach their own. */
async function prepareChildUsers(
  config: AgentConfig,
  place: AgentPlace,
  swept: ChildSweep,
): Promise<ChildUsers | undefined> {
  if (config.MINIMCP_CHILD_UIDS && process.getuid?.() !== 0) {
    // A non-root agent with CAP_SETUID would pass its capabilities on: ambient
    // capabilities survive its setuid() and the child's exec. From root, the
    // kernel clears every capability once a child's uids are all non-zero.
    throw new Error(
      'MINIMCP_CHILD_UIDS needs the agent to run as root (children drop every privilege when they switch user); unset it or run the agent as root (docs/deploy.md)',
    );
  }
  const users = config.MINIMCP_CHILD_UIDS
    ? createChildUsers(
        config.MINIMCP_CHILD_UIDS,
        swept.kept.flatMap((record) => (record.uid !== undefined ? [record.uid] : [])),
      )
    : undefined;
  if (!users && process.getuid?.() === 0)
    place.log.warn(
      'the agent runs as root without MINIMCP_CHILD_UIDS: every MCP server runs as root too',
    );
  if (users) {
    // Children of other users reach their own folders through these (o+x), and list nothing.
    const { dataDir, stateDir } = place;
    await chmod(dataDir, ((await stat(dataDir)).mode & 0o7777) | 0o001);
    await chmod(stateDir, 0o711);
    await mkdir(path.join(stateDir, 'instances'), { recursive: true });
    await chmod(path.join(stateDir, 'instances'), 0o711);
  }
  return users;
}

/** Everything children need on this node: registry, users, survivors, stdio folders, warm pool. */
interface ChildSetup {
  readonly registry: ChildRegistry;
  readonly users: ChildUsers | undefined;
  readonly survivors: Survivors;
  readonly stdioRoot: string;
  readonly warmPool: WarmPool | undefined;
  /** Resolve once the first reconcile pass is done: the warm pool fills after it. */
  readonly firstPassDone: () => void;
}

async function prepareChildren(
  pool: DatabasePool,
  config: AgentConfig,
  place: AgentPlace,
  swept: ChildSweep,
  options: { serversRoot: string; teardown: Teardown },
): Promise<ChildSetup> {
  const { stateDir, log } = place;
  const registry = createChildRegistry(stateDir, swept.kept);
  const users = await prepareChildUsers(config, place, swept);
  const survivors = createSurvivors(swept.kept, registry, users, (message, context) =>
    log.warn(context, message),
  );
  // Unwound after the reconciler: survivors never claimed do not outlive a clean stop.
  options.teardown.add('kill unclaimed survivors', () => void survivors.killUnclaimed());
  const stdioRoot = path.join(stateDir, 'stdio');
  // The survivors' FIFOs stay; a previous agent's spares and dead children's go.
  await pruneChildStdio(
    stdioRoot,
    new Set(swept.kept.flatMap((record) => (record.stdioDir ? [record.stdioDir] : []))),
  );
  let firstPassDone!: () => void;
  const firstPass = new Promise<void>((resolve) => (firstPassDone = resolve));
  const warmPool = await startWarmPool(pool, config.MINIMCP_WARM_POOL, {
    serversRoot: options.serversRoot,
    cwd: path.join(stateDir, 'warm-pool'),
    registry,
    stdioRoot,
    ...(users ? { users } : {}),
    logger: log,
    fillWhen: firstPass,
    metrics: place.metrics,
  });
  // Added before the reconciler's: unwound after it, once no instance can take a child.
  options.teardown.add('close the warm pool', () => warmPool?.close());
  return { registry, users, survivors, stdioRoot, warmPool, firstPassDone };
}

/** What every instance runtime of this node is given. */
function runtimeDeps(
  config: AgentConfig,
  place: AgentPlace,
  parts: { node: NodeRow; pool: DatabasePool; cipher: EnvelopeCipher; shipper: LogShipper },
  children: ChildSetup,
  serversRoot: string,
): RuntimeDeps {
  const { users, warmPool } = children;
  return {
    nodeId: parts.node.id,
    pool: parts.pool,
    cipher: parts.cipher,
    shipper: parts.shipper,
    registry: children.registry,
    stdioRoot: children.stdioRoot,
    survivors: children.survivors,
    sessionsRoot: path.join(place.stateDir, 'sessions'),
    ...(users ? { users } : {}),
    ...(warmPool ? { warmPool } : {}),
    serversRoot,
    workRoot: path.join(place.stateDir, 'instances'),
    bindHost: config.MINIMCP_BIND_HOST,
    publicHost: config.MINIMCP_PUBLIC_HOST,
    ...(config.MINIMCP_ALLOWED_ORIGINS ? { allowedOrigins: config.MINIMCP_ALLOWED_ORIGINS } : {}),
    upstreamOverrides: config.MINIMCP_UPSTREAM_OVERRIDES ?? {},
    handshakeTimeoutMs: config.MINIMCP_HANDSHAKE_TIMEOUT_MS,
    stopGraceMs: config.MINIMCP_STOP_GRACE_MS,
    maxRestarts: config.MINIMCP_MAX_RESTARTS,
    logger: place.log,
    recordAccess: config.MINIMCP_ACCESS_LOG,
    metrics: place.metrics.instances,
  };
}

/** The reconciler; after each pass, survivors no desired instance claimed are killed. */
function startReconciler(
  config: AgentConfig,
  place: AgentPlace,
  deps: RuntimeDeps,
  survivors: Survivors,
): Reconciler {
  const reconciler = createReconciler({
    pool: deps.pool,
    nodeId: deps.nodeId,
    intervalMs: config.MINIMCP_RECONCILE_SECONDS * 1000,
    logger: place.log,
    metrics: place.metrics.reconciler,
    // Once every desired instance had its chance to claim its survivor, the rest go.
    onPassDone: () => {
      if (survivors.size === 0) return;
      // A runtime still starting (a gRPC start that came before the pass) claims its own.
      const killed = survivors.killUnclaimed(
        (instanceId) => reconciler.get(instanceId)?.state === 'starting',
      );
      if (killed.length === 0) return;
      place.log.warn(
        { count: killed.length },
        'killed children of a previous agent whose instances no longer run here',
      );
    },
    deps,
  });
  place.metrics.observeInstances(() => reconciler.list());
  return reconciler;
}

/** Usage samples and health probes of every instance, on an interval and once more at stop. */
function startUsage(
  config: AgentConfig,
  place: AgentPlace,
  parts: { pool: DatabasePool; reconciler: Reconciler; node: NodeRow },
  teardown: Teardown,
): UsageSampler {
  const usage = startUsageSampler({
    ...parts,
    ...usageOptions(config, parts.pool, parts.node),
    onError: (error) => place.log.warn({ err: String(error) }, 'usage sample not written'),
    onUnhealthy: (targets) =>
      place.log.warn({ instances: targets.map((t) => t.instanceId) }, 'health probe failed'),
    metrics: place.metrics.usage,
  });
  teardown.add('write the last usage sample', async () => {
    usage.stop();
    await usage.flush();
  });
  return usage;
}

/** The heartbeat, and the free-port count it and the gRPC server report, kept fresh. */
function startNodeHeartbeat(
  config: AgentConfig,
  place: AgentPlace,
  parts: {
    pool: DatabasePool;
    node: NodeRow;
    usage: UsageSampler;
    shipper: LogShipper;
    warmPool: WarmPool | undefined;
    figures: { portsFree: number };
  },
  teardown: Teardown,
): void {
  const { pool, node, usage, shipper, warmPool, figures } = parts;
  const { log } = place;
  const intervalMs = config.MINIMCP_HEARTBEAT_SECONDS * 1000;
  const heartbeat = startHeartbeat({
    pool,
    nodeId: node.id,
    intervalMs,
    stats: () => ({
      ...usage.nodeTotals(),
      log_shipper: { ...shipper.stats() },
      ...(warmPool ? { warm_pool: { ...warmPool.stats() } } : {}),
      ports_free: figures.portsFree,
    }),
    onError: (error) => log.warn({ err: String(error) }, 'heartbeat not written'),
  });
  teardown.add('stop the heartbeat', () => heartbeat.stop());
  const portWatch = setInterval(() => {
    countPorts(pool, node.id)
      .then((p) => (figures.portsFree = p.free))
      .catch((error: unknown) => log.warn({ err: String(error) }, 'free port count not read'));
  }, intervalMs);
  portWatch.unref();
  teardown.add('stop the port watch', () => clearInterval(portWatch));
}

function agentPlace(config: AgentConfig, logger: Logger): AgentPlace {
  const nodeName = config.MINIMCP_NODE_NAME ?? os.hostname();
  const dataDir = path.resolve(config.MINIMCP_DATA_DIR);
  return {
    nodeName,
    dataDir,
    stateDir: path.join(dataDir, `agent-${nodeName}`),
    log: logger.child({ node: nodeName }),
    metrics: createAgentMetrics(),
  };
}

export async function startAgent(options: StartAgentOptions): Promise<RunningAgent> {
  const { config } = options;
  const place = agentPlace(config, options.logger);
  const { stateDir, log } = place;
  const startedAt = Date.now();
  const teardown = createTeardown(log);
  try {
    const { lease, pool } = await openDatabase(config, place, teardown);
    // After the lease: a second agent of this node is refused for that, not for the port.
    const metricsAt = config.MINIMCP_METRICS_LISTEN;
    const metricsListener = metricsAt
      ? await startMetricsListener(place.metrics.registry, metricsAt, (error) =>
          log.warn({ err: String(error) }, 'metrics not served'),
        )
      : undefined;
    if (metricsListener) teardown.add('close the metrics listener', () => metricsListener.close());
    // Children a previous agent left (it was killed or crashed): those that
    // can be re-attached wait for their instances; every other one is killed.
    const swept = await sweepChildren(stateDir, { keep: isReattachable });
    if (swept.killed.length > 0)
      log.warn({ count: swept.killed.length }, 'killed children left by a previous agent');
    const tls = options.tls ?? (await agentTlsMaterial(config, place.dataDir));
    const cipher = createEnvelopeCipher({
      provider: await createKeyProviderFromEnv(options.env ?? process.env),
    });
    // One object for the gRPC server's answers and RunningAgent.node.
    const node = { ...(await registerThisNode(pool, config, place.nodeName, AGENT_VERSION)) };
    teardown.add('mark the node down', () => setNodeStatus(pool, node.id, 'down'));
    await prepareLogPartitions(pool);
    const shipper = await createLogShipper({
      pool,
      spoolDir: path.join(stateDir, 'log-spool'),
      onDiagnostic: (message, context) => log.warn(context ?? {}, message),
      metrics: place.metrics.logShipper,
    });
    teardown.add('flush and close the log shipper', () => shipper.close());

    const serversRoot = options.serversRoot ?? DEFAULT_SERVERS_ROOT;
    const children = await prepareChildren(pool, config, place, swept, { serversRoot, teardown });
    const deps = runtimeDeps(config, place, { node, pool, cipher, shipper }, children, serversRoot);
    const reconciler = startReconciler(config, place, deps, children.survivors);
    teardown.add('stop every instance', () => reconciler.close());
    const { warmPool } = children;
    const figures = { portsFree: (await countPorts(pool, node.id)).free };
    const usage = startUsage(config, place, { pool, reconciler, node }, teardown);
    const grpcAdvertise = config.MINIMCP_GRPC_ADVERTISE ?? config.MINIMCP_GRPC_LISTEN;
    const grpcServer: AgentGrpcServer = await startAgentGrpcServer({
      address: config.MINIMCP_GRPC_LISTEN,
      tls,
      reconciler,
      pool,
      node: () => ({
        id: node.id,
        name: node.name,
        status: node.status,
        capacity: node.capacity,
        portsFree: figures.portsFree,
      }),
      agentVersion: AGENT_VERSION,
      startedAt,
      databaseReachable: () => shipper.stats().databaseReachable,
      defaultReadyTimeoutMs: config.MINIMCP_START_READY_TIMEOUT_MS,
      metrics: place.metrics.grpc,
      logger: log,
    });
    teardown.add('close the gRPC server', () => grpcServer.close());
    const heartbeatParts = { pool, node, usage, shipper, warmPool, figures };
    startNodeHeartbeat(config, place, heartbeatParts, teardown);

    await reconciler.reconcile().finally(children.firstPassDone);
    log.info(
      {
        grpc: grpcAdvertise,
        metrics: metricsListener?.address ?? 'off',
        ports: `${node.port_range_start}-${node.port_range_end}`,
        instances: reconciler.list().length,
      },
      'agent ready',
    );
    const { close, lost } = agentStop(place, { pool, node, lease }, teardown);
    return {
      node,
      grpcAddress: grpcAdvertise,
      reconciler,
      pool,
      warmPool,
      metricsAddress: metricsListener?.address,
      metricsRegistry: place.metrics.registry,
      lost,
      close,
    };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}

/** close(): drain, then undo every step; `lost`: the lease went to another agent, so stop. */
function agentStop(
  place: AgentPlace,
  parts: { pool: DatabasePool; node: NodeRow; lease: NodeLease },
  teardown: Teardown,
): { close: () => Promise<void>; lost: Promise<void> } {
  const { log } = place;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      log.info('agent stopping');
      // Drain first: placement stops choosing this node while it shuts down.
      await setNodeStatus(parts.pool, parts.node.id, 'draining').catch((error: unknown) =>
        log.warn({ err: String(error), step: 'mark the node draining' }, 'agent stop step failed'),
      );
      await teardown.run();
      log.info('agent stopped');
    })();
    return closing;
  };
  const lost = parts.lease.lost.then(async () => {
    log.error('node lease lost to another agent; stopping every instance here');
    await close();
  });
  return { close, lost };
}
