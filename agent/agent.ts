// The host agent, wired: node lease and registration, orphan cleanup, log
// shipper, reconciler, gRPC server, heartbeat and usage sampler. `close()`
// stops it cleanly (children stopped, ports released, instances marked
// disconnected with an event, logs flushed, node marked down).
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'slonik';
import { createEnvelopeCipher } from '../core/crypto/envelope.js';
import { createKeyProviderFromEnv } from '../core/crypto/provider-from-env.js';
import type { AgentConfig } from '../core/config.js';
import { listTypes } from '../core/db/mcp-types.js';
import { countPorts } from '../core/db/ports.js';
import { createDatabasePool, type DatabasePool } from '../core/db/pool.js';
import { registerNode, setNodeStatus, type NodeRow } from '../core/db/nodes.js';
import type { Logger } from '../core/logger.js';
import { ensureLocalCertificates, type TlsMaterial } from '../core/tls.js';
import { startAgentGrpcServer, type AgentGrpcServer } from './node/grpc-server.js';
import { startHeartbeat } from './node/heartbeat.js';
import { createLogShipper } from './node/log-shipper.js';
import { acquireNodeLease } from './node/node-lease.js';
import { createReconciler, type Reconciler } from './node/reconciler.js';
import { createChildRegistry, sweepChildren, type ChildRegistry } from './child/child-registry.js';
import { pruneChildStdio } from './child/child-stdio.js';
import { createChildUsers, type ChildUsers } from './child/child-users.js';
import { createSurvivors, isReattachable } from './child/survivors.js';
import { isPoolable, resolveCommand } from './child/server-command.js';
import { startUsageSampler } from './node/usage.js';
import { createWarmPool, type WarmPool, type WarmPoolEntry } from './child/warm-pool.js';

export const AGENT_VERSION = '0.1.0';

/** dist/ (or the repo root when run from source): built-in server scripts are relative to it. */
export const DEFAULT_SERVERS_ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
);

/**
 * The agent's TLS set: deployment-issued files when configured (on AWS the
 * control plane trusts only that CA), else a local set generated on first start.
 */
async function agentTlsMaterial(config: AgentConfig, dataDir: string): Promise<TlsMaterial> {
  const files = [
    config.MINIMCP_TLS_CA_FILE,
    config.MINIMCP_TLS_CERT_FILE,
    config.MINIMCP_TLS_KEY_FILE,
  ];
  if (files.some(Boolean)) {
    if (!files.every(Boolean)) {
      throw new Error(
        'MINIMCP_TLS_CA_FILE, MINIMCP_TLS_CERT_FILE and MINIMCP_TLS_KEY_FILE go together: set all three',
      );
    }
    const [ca, cert, key] = await Promise.all(files.map((file) => readFile(file!, 'utf8')));
    return { ca: ca!, cert: cert!, key: key! };
  }
  return (await ensureLocalCertificates(config.MINIMCP_TLS_DIR ?? path.join(dataDir, 'tls'))).agent;
}

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

export async function startAgent(options: StartAgentOptions): Promise<RunningAgent> {
  const { config, logger } = options;
  const nodeName = config.MINIMCP_NODE_NAME ?? os.hostname();
  const dataDir = path.resolve(config.MINIMCP_DATA_DIR);
  const stateDir = path.join(dataDir, `agent-${nodeName}`);
  const log = logger.child({ node: nodeName });
  const startedAt = Date.now();

  const cleanup: Array<() => Promise<void> | void> = [];
  const unwind = async () => {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined);
  };

  try {
    const lease = await acquireNodeLease({
      databaseUrl: config.DATABASE_URL,
      nodeName,
      onDiagnostic: (m) => log.warn(m),
    });
    cleanup.push(() => lease.release());
    const pool = await createDatabasePool(config.DATABASE_URL, {
      maximumPoolSize: config.MINIMCP_DB_POOL_SIZE,
    });
    cleanup.push(() => pool.end());

    // Children a previous agent left (it was killed or crashed): those that
    // can be re-attached wait for their instances; every other one is killed.
    const swept = await sweepChildren(stateDir, { keep: isReattachable });
    if (swept.killed.length > 0)
      log.warn({ count: swept.killed.length }, 'killed children left by a previous agent');

    const tls = options.tls ?? (await agentTlsMaterial(config, dataDir));
    const cipher = createEnvelopeCipher({
      provider: await createKeyProviderFromEnv(options.env ?? process.env),
    });

    const grpcAdvertise = config.MINIMCP_GRPC_ADVERTISE ?? config.MINIMCP_GRPC_LISTEN;
    const range = config.MINIMCP_PORT_RANGE;
    // One transaction: placement never sees the node without its port pool.
    let node = await pool.transaction((tx) =>
      registerNode(tx, {
        name: nodeName,
        grpcAddress: grpcAdvertise,
        publicHost: config.MINIMCP_PUBLIC_HOST,
        portRangeStart: range.start,
        portRangeEnd: range.end,
        capacity: config.MINIMCP_NODE_CAPACITY ?? range.end - range.start + 1,
        agentVersion: AGENT_VERSION,
      }),
    );
    cleanup.push(() => setNodeStatus(pool, node.id, 'down'));
    // Log partitions for this month and the next ones exist before the first line.
    await pool.query(sql.unsafe`SELECT minimcp_maintain_partitions(3, NULL)`);

    const shipper = await createLogShipper({
      pool,
      spoolDir: path.join(stateDir, 'log-spool'),
      onDiagnostic: (message, context) => log.warn(context ?? {}, message),
    });
    cleanup.push(() => shipper.close());

    const registry = createChildRegistry(stateDir, swept.kept);
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
      log.warn(
        'the agent runs as root without MINIMCP_CHILD_UIDS: every MCP server runs as root too',
      );
    if (users) {
      // Children of other users reach their own folders through these (o+x), and list nothing.
      await chmod(dataDir, ((await stat(dataDir)).mode & 0o7777) | 0o001);
      await chmod(stateDir, 0o711);
      await mkdir(path.join(stateDir, 'instances'), { recursive: true });
      await chmod(path.join(stateDir, 'instances'), 0o711);
    }
    const survivors = createSurvivors(swept.kept, registry, users);
    // Unwound after the reconciler: survivors never claimed do not outlive a clean stop.
    cleanup.push(() => void survivors.killUnclaimed());
    const stdioRoot = path.join(stateDir, 'stdio');
    // The survivors' FIFOs stay; a previous agent's spares and dead children's go.
    await pruneChildStdio(
      stdioRoot,
      new Set(swept.kept.flatMap((record) => (record.stdioDir ? [record.stdioDir] : []))),
    );
    const serversRoot = options.serversRoot ?? DEFAULT_SERVERS_ROOT;
    let firstPassDone!: () => void;
    const firstPass = new Promise<void>((resolve) => (firstPassDone = resolve));
    const warmPool = await startWarmPool(pool, config.MINIMCP_WARM_POOL, {
      serversRoot,
      cwd: path.join(stateDir, 'warm-pool'),
      registry,
      stdioRoot,
      ...(users ? { users } : {}),
      logger: log,
      fillWhen: firstPass,
    });
    // Pushed before the reconciler's: unwound after it, once no instance can take a child.
    cleanup.push(() => warmPool?.close());

    const reconciler = createReconciler({
      pool,
      nodeId: node.id,
      intervalMs: config.MINIMCP_RECONCILE_SECONDS * 1000,
      logger: log,
      // Once every desired instance had its chance to claim its survivor, the rest go.
      onPassDone: () => {
        if (survivors.size === 0) return;
        // A runtime still starting (a gRPC start that came before the pass) claims its own.
        const killed = survivors.killUnclaimed(
          (instanceId) => reconciler.get(instanceId)?.state === 'starting',
        );
        if (killed.length === 0) return;
        log.warn(
          { count: killed.length },
          'killed children of a previous agent whose instances no longer run here',
        );
      },
      deps: {
        nodeId: node.id,
        pool,
        cipher,
        shipper,
        registry,
        stdioRoot,
        survivors,
        sessionsRoot: path.join(stateDir, 'sessions'),
        ...(users ? { users } : {}),
        ...(warmPool ? { warmPool } : {}),
        serversRoot,
        workRoot: path.join(stateDir, 'instances'),
        bindHost: config.MINIMCP_BIND_HOST,
        publicHost: config.MINIMCP_PUBLIC_HOST,
        ...(config.MINIMCP_ALLOWED_ORIGINS
          ? { allowedOrigins: config.MINIMCP_ALLOWED_ORIGINS }
          : {}),
        upstreamOverrides: config.MINIMCP_UPSTREAM_OVERRIDES ?? {},
        handshakeTimeoutMs: config.MINIMCP_HANDSHAKE_TIMEOUT_MS,
        stopGraceMs: config.MINIMCP_STOP_GRACE_MS,
        maxRestarts: config.MINIMCP_MAX_RESTARTS,
        logger: log,
        recordAccess: config.MINIMCP_ACCESS_LOG,
      },
    });
    cleanup.push(() => reconciler.close());

    let portsFree = (await countPorts(pool, node.id)).free;
    const usage = startUsageSampler({
      pool,
      reconciler,
      intervalMs: config.MINIMCP_USAGE_SECONDS * 1000,
      onError: (error) => log.warn({ err: String(error) }, 'usage sample not written'),
    });
    cleanup.push(async () => {
      usage.stop();
      await usage.flush();
    });

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
        portsFree,
      }),
      agentVersion: AGENT_VERSION,
      startedAt,
      databaseReachable: () => shipper.stats().databaseReachable,
      defaultReadyTimeoutMs: config.MINIMCP_START_READY_TIMEOUT_MS,
      logger: log,
    });
    cleanup.push(() => grpcServer.close());

    const heartbeat = startHeartbeat({
      pool,
      nodeId: node.id,
      intervalMs: config.MINIMCP_HEARTBEAT_SECONDS * 1000,
      stats: () => ({
        ...usage.nodeTotals(),
        log_shipper: { ...shipper.stats() },
        ...(warmPool ? { warm_pool: { ...warmPool.stats() } } : {}),
        ports_free: portsFree,
      }),
      onError: (error) => log.warn({ err: String(error) }, 'heartbeat not written'),
    });
    cleanup.push(() => heartbeat.stop());
    const portWatch = setInterval(() => {
      countPorts(pool, node.id)
        .then((p) => (portsFree = p.free))
        .catch(() => undefined);
    }, config.MINIMCP_HEARTBEAT_SECONDS * 1000);
    portWatch.unref();
    cleanup.push(() => clearInterval(portWatch));

    await reconciler.reconcile().finally(firstPassDone);
    log.info(
      {
        grpc: grpcAdvertise,
        ports: `${range.start}-${range.end}`,
        instances: reconciler.list().length,
      },
      'agent ready',
    );

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        log.info('agent stopping');
        // Drain first: placement stops choosing this node while it shuts down.
        await setNodeStatus(pool, node.id, 'draining').catch(() => undefined);
        await unwind();
        log.info('agent stopped');
      })();
      return closing;
    };
    const lost = lease.lost.then(async () => {
      log.error('node lease lost to another agent; stopping every instance here');
      await close();
    });
    node = { ...node };
    return { node, grpcAddress: grpcAdvertise, reconciler, pool, warmPool, lost, close };
  } catch (error) {
    await unwind();
    throw error;
  }
}
