// The HTTP API for the benchmarks: the local server (`dist/lambdas/local-server.js`)
// as its own process on the API's database role, users with API tokens, and a
// node served by the test suite's fake agent (gRPC with mutual TLS, answers at
// once) for benchmarks about the API rather than about child processes.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { sql } from 'slonik';
import { registerNode, recordHeartbeat, type NodeRow } from '../../core/db/nodes.js';
import { asUser } from '../../lambdas/control/db/user-context.js';
import { insertUserToken } from '../../lambdas/control/db/user-tokens.js';
import { issueToken } from '../../core/tokens.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import type { TestDatabase } from '../../test/support/database.js';
import { startFakeAgent, type FakeAgent } from '../../test/support/fake-agent.js';
import { makeUser } from '../../test/support/fixtures.js';
import { isAlive } from './proc.js';
import { DIST_ROOT, watchBenchChild, type BenchContext } from './stack.js';

export interface ApiProcess {
  readonly url: string;
  readonly pid: number;
  output(): string;
}

/** Starts the local API server and resolves once GET /v1/health answers. */
export async function startApiProcess(
  ctx: BenchContext,
  db: TestDatabase,
  env: Record<string, string> = {},
): Promise<ApiProcess> {
  const tls = await ctx.tls();
  const port = await findFreePort();
  const nodeArgs = (process.env.BENCH_API_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, path.join(DIST_ROOT, 'lambdas/local-server.js')],
    {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: db.appUrl,
        MINIMCP_API_HOST: '127.0.0.1',
        MINIMCP_API_PORT: String(port),
        MINIMCP_TLS_DIR: tls.dir,
        MINIMCP_DATA_DIR: await ctx.scratchDir('api'),
        LOG_LEVEL: 'warn',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const { pid, output, exited } = watchBenchChild(child);
  ctx.cleanup.defer('stop the API', async () => {
    if (!isAlive(pid)) return;
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    if (isAlive(pid)) child.kill('SIGKILL');
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the API exited while starting: ${output().slice(-2_000)}`);
    try {
      if ((await fetch(`${url}/v1/health`)).status < 500) return { url, pid, output };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline)
      throw new Error(`the API did not answer within 30 s: ${output().slice(-2_000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface ApiUser {
  id: string;
  token: string;
}

/** Users with an API token each, written the way the API writes them. */
export async function createApiUsers(db: TestDatabase, count: number): Promise<ApiUser[]> {
  const users: ApiUser[] = [];
  for (let i = 0; i < count; i++) {
    const user = await makeUser(db.owner);
    const issued = issueToken('user');
    await asUser(db.app, user.id, (tx) =>
      insertUserToken(tx, {
        userId: user.id,
        name: 'bench',
        hash: issued.hash,
        prefix: issued.displayPrefix,
        expiresAt: null,
      }),
    );
    users.push({ id: user.id, token: issued.token });
  }
  return users;
}

/** Lifts the per-user instance limit (10 by default) for load that creates many. */
export async function setInstanceLimit(db: TestDatabase, limit: number): Promise<void> {
  await db.owner.query(sql.unsafe`
    UPDATE system_settings SET value = ${sql.jsonb(limit)} WHERE key = 'mcp.max_instances_per_user'`);
}

export interface FakeNode {
  node: NodeRow;
  agent: FakeAgent;
}

/**
 * A node whose agent is the test suite's fake (answers StartInstance with
 * "running" at once), registered with `ports` ports and a heartbeat kept
 * fresh; every other node is marked down so placement can only pick this one.
 */
export async function startFakeNode(
  ctx: BenchContext,
  db: TestDatabase,
  ports: number,
): Promise<FakeNode> {
  const tls = await ctx.tls();
  const name = `fake-${randomBytes(3).toString('hex')}`;
  const agent = await startFakeAgent({ tls: tls.agent, nodeName: name });
  ctx.cleanup.defer(`stop fake agent ${name}`, () => agent.stop());
  const node = await registerNode(db.owner, {
    name,
    grpcAddress: agent.address,
    publicHost: '127.0.0.1',
    portRangeStart: 10_001,
    portRangeEnd: 10_000 + ports,
    capacity: ports,
    agentVersion: 'bench-fake',
  });
  await db.owner.query(sql.unsafe`UPDATE nodes SET status = 'down' WHERE id <> ${node.id}`);
  const heartbeat = setInterval(
    () => void recordHeartbeat(db.owner, node.id, {}).catch(() => undefined),
    5_000,
  );
  ctx.cleanup.defer(`stop the heartbeat of ${name}`, () => clearInterval(heartbeat));
  return { node, agent };
}
