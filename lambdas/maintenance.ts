// The scheduled maintenance Lambda (an EventBridge rule, every minute): config
// (env + SSM), the pool and the agent clients are built at the first
// invocation and kept for the container; each run is lambdas/control/maintenance.ts, and
// ends with one JSON log line holding its summary and, in CloudWatch embedded
// metric format, the healthy-node count the operations alarm watches.
import '../core/polyfills.js';
import path from 'node:path';
import { z } from 'zod';
import { createAgentRegistry, resolveControlPlaneTls } from './control/agent-registry.js';
import {
  controlPlaneConfig,
  coreConfig,
  loadConfig,
  type Env,
  type LoadConfigOptions,
} from '../core/config.js';
import { createDatabasePool } from '../core/db/pool.js';
import { createLogger, type Logger } from '../core/logger.js';
import { runMaintenance, type MaintenanceSummary } from './control/maintenance.js';

/** Same name as infra/constructs/maintenance.ts HEARTBEAT_METRIC_NAME (infra is not imported here). */
export const HEALTHY_NODES_METRIC = 'HealthyAgentNodes';

export const MaintenanceConfigSchema = coreConfig.extend(controlPlaneConfig.shape).extend({
  MINIMCP_METRICS_NAMESPACE: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('CloudWatch namespace of the healthy-node metric; unset: no metric.'),
});
export type MaintenanceLambdaConfig = z.infer<typeof MaintenanceConfigSchema>;

/** What EventBridge sends on a schedule; only read for the log line. */
const ScheduledEvent = z.object({ id: z.string().optional(), time: z.string().optional() });

/** An embedded-metric-format directive: CloudWatch Logs turns the line into a metric. */
export function healthyNodesMetric(
  namespace: string,
  healthyNodes: number,
  at: Date,
): Record<string, unknown> {
  return {
    _aws: {
      Timestamp: at.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [[]],
          Metrics: [{ Name: HEALTHY_NODES_METRIC, Unit: 'Count' }],
        },
      ],
    },
    [HEALTHY_NODES_METRIC]: healthyNodes,
  };
}

export interface MaintenanceHandler {
  handle(event: unknown): Promise<MaintenanceSummary>;
  close(): Promise<void>;
}

interface Built {
  run(): Promise<MaintenanceSummary>;
  namespace: string | undefined;
  close(): Promise<void>;
}

async function build(env: Env, options: LoadConfigOptions, logger: Logger): Promise<Built> {
  const config = await loadConfig(MaintenanceConfigSchema, env, options);
  const tls = await resolveControlPlaneTls({
    ca: config.MINIMCP_TLS_CA,
    cert: config.MINIMCP_TLS_CERT,
    key: config.MINIMCP_TLS_KEY,
    dir: config.MINIMCP_TLS_DIR ?? path.join(config.MINIMCP_DATA_DIR, 'tls'),
  });
  const pool = await createDatabasePool(config.DATABASE_URL, {
    maximumPoolSize: config.MINIMCP_DB_POOL_SIZE,
  });
  const agents = createAgentRegistry({ tls, defaultDeadlineMs: config.MINIMCP_AGENT_STOP_WAIT_MS });
  return {
    namespace: config.MINIMCP_METRICS_NAMESPACE,
    run: () =>
      runMaintenance({
        pool,
        agents: agents.forNode,
        config: {
          nodeStaleSeconds: config.MINIMCP_NODE_STALE_SECONDS,
          stopWaitMs: config.MINIMCP_AGENT_STOP_WAIT_MS,
        },
        logger,
      }),
    async close() {
      try {
        agents.close();
      } finally {
        await pool.end();
      }
    },
  };
}

/** The job for one environment, built at its first run; `handler` below keeps one per container. */
export function createMaintenanceHandler(
  env: Env,
  options: LoadConfigOptions & { logger?: Logger } = {},
): MaintenanceHandler {
  const logger = options.logger ?? createLogger({ name: 'minimcp-maintenance' });
  let ready: Promise<Built> | undefined;
  return {
    async handle(event) {
      // A failed start is not kept: the next run tries again.
      ready ??= build(env, options, logger).catch((error: unknown) => {
        ready = undefined;
        throw error;
      });
      const scheduled = ScheduledEvent.safeParse(event);
      const trigger = scheduled.success ? scheduled.data : {};
      const startedAt = Date.now();
      try {
        const built = await ready;
        const summary = await built.run();
        logger.info(
          {
            trigger,
            summary,
            durationMs: Date.now() - startedAt,
            ...(built.namespace
              ? healthyNodesMetric(built.namespace, summary.healthyNodes, new Date())
              : {}),
          },
          'maintenance run',
        );
        return summary;
      } catch (error) {
        logger.error(
          { trigger, err: String(error), durationMs: Date.now() - startedAt },
          'maintenance run failed',
        );
        throw error;
      }
    },
    async close() {
      // A build that failed was logged by the run that awaited it ('maintenance
      // run failed') and left nothing open: there is nothing to close then.
      const built = await ready?.catch(() => undefined);
      ready = undefined;
      await built?.close();
    },
  };
}

let container: MaintenanceHandler | undefined;

/** Lambda entry: EventBridge scheduled event in, the run's summary out. */
export async function handler(event: unknown): Promise<MaintenanceSummary> {
  container ??= createMaintenanceHandler(process.env);
  return container.handle(event);
}
