// The whole local stack (infra/local/local-stack.ts) for end-to-end tests: its
// own data folder, free ports, a small port range, quiet logs; stop() also
// removes the data folder.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Env } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { startLocalStack, type LocalStack } from '../../infra/local/local-stack.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { DIST_ROOT, randomPortRange } from './agent-harness.js';

export interface TestStack {
  stack: LocalStack;
  stop(): Promise<void>;
}

export async function startTestStack(options: {
  name: string;
  /** Instance ports the agent may use. */
  ports?: number;
  /** More settings (they win over the defaults here). */
  env?: Env;
}): Promise<TestStack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `minimcp-${options.name}-`));
  const range = randomPortRange(options.ports ?? 5);
  const stack = await startLocalStack({
    env: {
      PATH: process.env.PATH,
      MINIMCP_DATA_DIR: dataDir,
      MINIMCP_PG_PORT: String(await findFreePort()),
      MINIMCP_API_PORT: '0',
      MINIMCP_GRPC_LISTEN: `127.0.0.1:${await findFreePort()}`,
      MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
      MINIMCP_PORT_RANGE: `${range.start}-${range.end}`,
      ...options.env,
    },
    logger: createLogger({ level: 'warn', name: options.name }),
    serversRoot: DIST_ROOT,
  });
  return {
    stack,
    async stop() {
      try {
        await stack.close();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
