// Builds the app's dependencies from configuration, for the two entry points
// (Lambda and the local server). The key provider is created on first use:
// most requests never encrypt, and on Lambda it costs the KMS client.
import path from 'node:path';
import {
  createAgentRegistry,
  resolveControlPlaneTls,
  type AgentResolver,
} from './control/agent-registry.js';
import type { ApiConfig } from '../core/config.js';
import { createEnvelopeCipher, type EnvelopeCipher } from '../core/crypto/envelope.js';
import { createKeyProviderFromEnv } from '../core/crypto/provider-from-env.js';
import { createDatabasePool } from '../core/db/pool.js';
import { createInstanceService, type InstanceServiceConfig } from './control/instance-service.js';
import { createLogger, type Logger } from '../core/logger.js';
import type { AppDeps } from './context.js';
import type { RequestMetrics } from './request-metrics.js';

/** An EnvelopeCipher whose provider is built at the first call (and retried if that failed). */
export function lazyCipher(make: () => Promise<EnvelopeCipher>): EnvelopeCipher {
  let cipher: Promise<EnvelopeCipher> | undefined;
  const get = () =>
    (cipher ??= make().catch((error: unknown) => {
      cipher = undefined;
      throw error;
    }));
  return {
    encrypt: async (plaintext, ctx) => (await get()).encrypt(plaintext, ctx),
    decrypt: async (envelope, ctx) => (await get()).decrypt(envelope, ctx),
  };
}

/** The instance service's settings, as the API's configuration names them. */
export function instanceServiceConfig(config: ApiConfig): InstanceServiceConfig {
  return {
    heartbeatFreshSeconds: config.MINIMCP_NODE_STALE_SECONDS,
    startWaitMs: config.MINIMCP_START_WAIT_MS,
    notifyWaitMs: config.MINIMCP_AGENT_STOP_WAIT_MS,
  };
}

export interface Runtime {
  deps: AppDeps;
  /** Clients of the node agents (the local stack's maintenance loop uses them too). */
  agents: AgentResolver;
  close(): Promise<void>;
}

export async function createRuntime(
  config: ApiConfig,
  options: { clientIp: AppDeps['clientIp']; logger?: Logger; requestMetrics?: RequestMetrics },
): Promise<Runtime> {
  const logger = options.logger ?? createLogger({ level: config.LOG_LEVEL });
  const pool = await createDatabasePool(config.DATABASE_URL, {
    maximumPoolSize: config.MINIMCP_DB_POOL_SIZE,
  });
  const cipher = lazyCipher(async () =>
    createEnvelopeCipher({ provider: await createKeyProviderFromEnv(config) }),
  );
  const tls = await resolveControlPlaneTls({
    ca: config.MINIMCP_TLS_CA,
    cert: config.MINIMCP_TLS_CERT,
    key: config.MINIMCP_TLS_KEY,
    dir: config.MINIMCP_TLS_DIR ?? path.join(config.MINIMCP_DATA_DIR, 'tls'),
  });
  const agents = createAgentRegistry({
    tls,
    defaultDeadlineMs: config.MINIMCP_START_WAIT_MS + 2_000,
  });
  const instances = createInstanceService({
    pool,
    agents: agents.forNode,
    logger,
    config: instanceServiceConfig(config),
  });
  return {
    deps: {
      pool,
      config,
      cipher,
      logger,
      clientIp: options.clientIp,
      instances,
      agents: agents.forNode,
      ...(options.requestMetrics ? { requestMetrics: options.requestMetrics } : {}),
    },
    agents: agents.forNode,
    close: async () => {
      try {
        agents.close();
      } finally {
        await pool.end();
      }
    },
  };
}
