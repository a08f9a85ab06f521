// The scheduled backstop behind the agents: expires instances past their
// time, marks nodes with a stale heartbeat down and their instances
// disconnected, frees ports nothing holds, purges instances ended more than
// cleanup.retention_days ago, and keeps the monthly log and event partitions.
// Every step locks the rows it changes (SKIP LOCKED) and re-checks them, so
// two runs at once split the work and write each event once.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { AgentResolver } from './agent-registry.js';
import { insertEvents } from '../../core/db/events.js';
import {
  disconnectInstancesOfDownNodes,
  expireDueInstances,
  type ChangedInstanceRow,
} from './db/instance-sweeps.js';
import { countHealthyNodes, markStaleNodesDown } from '../../core/db/nodes.js';
import { releaseLeakedPorts, releasePortsOfInstances } from '../../core/db/ports.js';
import { purgeEndedInstances } from './db/instance-purge.js';
import { asSystem, type Transaction } from './db/user-context.js';
import { getSettings } from '../../core/db/settings.js';
import type { EventType } from '../../core/domain.js';
import type { Logger } from '../../core/logger.js';

export interface MaintenanceConfig {
  /** A node whose last heartbeat is older than this is marked down. */
  nodeStaleSeconds: number;
  /** Bound of each StopInstance sent for an expired instance. Default 5000. */
  stopWaitMs?: number;
  /** Instances changed per transaction. Default 500. */
  batchSize?: number;
}

export interface MaintenanceOptions {
  /** Any role that may act in system scope (the API's role does). */
  pool: DatabasePool;
  agents: AgentResolver;
  config: MaintenanceConfig;
  /** The run's summary, and each stop request that failed. */
  logger: Logger;
}

export interface MaintenanceSummary {
  /** Instances this run marked expired. */
  expired: number;
  /** Nodes this run marked down. */
  nodesDown: number;
  /** Instances this run marked disconnected (their node is down). */
  disconnected: number;
  /** Ports this run gave back to the pool: of expired and disconnected instances, and leaked ones. */
  portsReleased: number;
  /** Instance rows this run removed, ended more than cleanup.retention_days ago (with their logs and events). */
  purged: number;
  partitions: { created: string[]; dropped: string[] };
  /** Active nodes with a fresh heartbeat after the run (the operations alarm watches it). */
  healthyNodes: number;
  /** StopInstance calls for expired instances, and how many of them failed. */
  agentStops: { requested: number; failed: number };
}

const DEFAULT_STOP_WAIT_MS = 5_000;
const DEFAULT_BATCH_SIZE = 500;
/** A run ends in bounded time even if rows keep coming due while it runs. */
const MAX_BATCHES = 50;
/** StopInstance calls in flight at once. */
const STOP_CONCURRENCY = 8;
const PARTITION_MONTHS_AHEAD = 3;
/** Purge transactions per run (each removes up to batchSize instances). */
const PURGE_BATCHES = 4;

const PartitionAction = z.object({
  action: z.enum(['created', 'dropped']),
  partition_name: z.string(),
});

/**
 * Applies one status change (rows chosen and changed by `change`) in batches,
 * each with its ports released and its events written in the same transaction.
 */
async function inBatches(
  pool: DatabasePool,
  batchSize: number,
  change: (tx: Transaction, limit: number) => Promise<readonly ChangedInstanceRow[]>,
  event: { type: EventType; data: (row: ChangedInstanceRow) => Record<string, unknown> },
): Promise<{ rows: ChangedInstanceRow[]; portsReleased: number }> {
  const rows: ChangedInstanceRow[] = [];
  let portsReleased = 0;
  for (let batch = 0; batch < MAX_BATCHES; batch++) {
    const done = await asSystem(pool, async (tx) => {
      const changed = await change(tx, batchSize);
      const released = await releasePortsOfInstances(
        tx,
        changed.map((row) => row.id),
      );
      await insertEvents(
        tx,
        changed.map((row) => ({
          instanceId: row.id,
          userId: row.user_id,
          type: event.type,
          data: event.data(row),
        })),
      );
      return { changed, released };
    });
    rows.push(...done.changed);
    portsReleased += done.released;
    if (done.changed.length < batchSize) break;
  }
  return { rows, portsReleased };
}

/**
 * Removes instances ended more than cleanup.retention_days ago, `batchSize`
 * per transaction and at most PURGE_BATCHES per run: a backlog drains over
 * several runs without one long transaction.
 */
async function purgeInBatches(pool: DatabasePool, batchSize: number): Promise<number> {
  let purged = 0;
  for (let batch = 0; batch < PURGE_BATCHES; batch++) {
    const ids = await asSystem(pool, async (tx) =>
      purgeEndedInstances(tx, (await getSettings(tx))['cleanup.retention_days'], batchSize),
    );
    purged += ids.length;
    if (ids.length < batchSize) break;
  }
  return purged;
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function runMaintenance(options: MaintenanceOptions): Promise<MaintenanceSummary> {
  const { pool, agents, config, logger } = options;
  const batchSize = config.batchSize ?? DEFAULT_BATCH_SIZE;
  const stopWaitMs = config.stopWaitMs ?? DEFAULT_STOP_WAIT_MS;

  const expired = await inBatches(pool, batchSize, expireDueInstances, {
    type: 'expired',
    data: (row) => ({
      by: 'maintenance',
      previous_status: row.previous_status,
      node_id: row.node_id,
      port: row.assigned_port,
    }),
  });

  const nodesDown = await asSystem(pool, (tx) => markStaleNodesDown(tx, config.nodeStaleSeconds));
  // Every down node, not only those marked now: a run that died between the
  // two steps, or a node an operator took down, is caught up here.
  const disconnected = await inBatches(pool, batchSize, disconnectInstancesOfDownNodes, {
    type: 'disconnected',
    data: (row) => ({
      by: 'maintenance',
      reason: 'node down',
      previous_status: row.previous_status,
      node_id: row.node_id,
      port: row.assigned_port,
    }),
  });

  const leaked = await asSystem(pool, (tx) => releaseLeakedPorts(tx));
  if (leaked.length > 0)
    logger.info(
      { ports: leaked.map((p) => ({ nodeId: p.node_id, port: p.port })) },
      'released ports held by no live instance',
    );

  const purged = await purgeInBatches(pool, batchSize);

  const partitionActions = await asSystem(pool, (tx) =>
    tx.any(
      sql.type(PartitionAction)`
        SELECT action, partition_name FROM minimcp_maintain_partitions(${PARTITION_MONTHS_AHEAD}, NULL)
      `,
    ),
  );

  // Stop what expired, after the commit, on nodes that are still up. Best
  // effort: an agent also stops an instance at its expiry on its own, and its
  // reconcile loop stops whatever the database no longer wants running.
  const downNodes = new Set(nodesDown.map((node) => node.id));
  const toStop = expired.rows.filter(
    (row) =>
      row.node_id !== null &&
      row.node_grpc_address !== null &&
      row.node_status !== 'down' &&
      !downNodes.has(row.node_id),
  );
  let stopsFailed = 0;
  await eachLimited(toStop, STOP_CONCURRENCY, async (row) => {
    if (row.node_id === null || row.node_grpc_address === null) return;
    try {
      await agents({ id: row.node_id, grpc_address: row.node_grpc_address }).stopInstance(
        { instanceId: row.id, reason: 'STOP_REASON_EXPIRED' },
        { deadlineMs: stopWaitMs },
      );
    } catch (error) {
      // Counted and logged; the agent's own expiry timer and reconcile loop stop it anyway.
      stopsFailed++;
      logger.warn(
        { err: String(error), instanceId: row.id, nodeId: row.node_id },
        'could not ask the agent to stop an expired instance',
      );
    }
  });

  const healthyNodes = await asSystem(pool, (tx) => countHealthyNodes(tx, config.nodeStaleSeconds));

  return {
    expired: expired.rows.length,
    nodesDown: nodesDown.length,
    disconnected: disconnected.rows.length,
    portsReleased: expired.portsReleased + disconnected.portsReleased + leaked.length,
    purged,
    partitions: {
      created: partitionActions.filter((p) => p.action === 'created').map((p) => p.partition_name),
      dropped: partitionActions.filter((p) => p.action === 'dropped').map((p) => p.partition_name),
    },
    healthyNodes,
    agentStops: { requested: toStop.length, failed: stopsFailed },
  };
}
