// What the instance and maintenance tests share: a fresh database, real gRPC
// fake agents over mutual TLS registered as nodes, the instance service on the
// RLS-bound API pool, and fixtures written through the owner pool.
import { randomUUID } from 'node:crypto';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { AgentServiceHandlers } from '../../agent/node/grpc-service.js';
import { createAgentRegistry, type AgentRegistry } from '../../lambdas/control/agent-registry.js';
import { insertEvent } from '../../core/db/events.js';
import { insertInstance } from '../../lambdas/control/db/instance-changes.js';
import { getTypeByName } from './queries.js';
import { registerNode, type NodeRow } from '../../core/db/nodes.js';
import { claimFreePort, releasePortsOfInstance } from '../../core/db/ports.js';
import type { InstanceStatus } from '../../core/domain.js';
import {
  createInstanceService,
  type InstanceService,
  type InstanceServiceConfig,
} from '../../lambdas/control/instance-service.js';
import { createLogger } from '../../core/logger.js';
import { issueToken } from '../../core/tokens.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import {
  createTestCertificates,
  startFakeAgent,
  type FakeAgent,
  type FakeAgentOptions,
  type TestCertificates,
} from './fake-agent.js';
import { makeUser } from './fixtures.js';

export interface TestNode {
  fake: FakeAgent;
  node: NodeRow;
}

export interface Harness {
  db: TestDatabase;
  certs: TestCertificates;
  registry: AgentRegistry;
  /** Starts a fake agent (mTLS) and registers it as an active node with a fresh heartbeat. */
  node(
    options?: Omit<FakeAgentOptions, 'tls'> & {
      portRangeStart?: number;
      portRangeEnd?: number;
    },
  ): Promise<TestNode>;
  service(config?: Partial<InstanceServiceConfig>, clock?: () => Date): InstanceService;
  user(): Promise<string>;
  /** Takes every node out of placement (status down), so a test chooses its own. */
  downAllNodes(): Promise<void>;
  /** The event types of an instance, oldest first. */
  eventTypes(instanceId: string): Promise<string[]>;
  /** An instance placed on `node` directly in the database, with its port claimed. */
  seedInstance(input: {
    userId: string;
    node: NodeRow;
    status?: InstanceStatus;
    expiresAt?: Date;
  }): Promise<{ id: string; port: number }>;
  close(): Promise<void>;
}

export const InstanceDbRow = z.object({
  id: z.string(),
  status: z.string(),
  node_id: z.string().nullable(),
  assigned_port: z.number().nullable(),
  access_token_hash: z.string(),
  access_token_prefix: z.string(),
  access_url: z.string(),
  expires_at: z.date(),
  deleted_at: z.date().nullable(),
  error_message: z.string().nullable(),
  config: z.record(z.string(), z.unknown()).nullable(),
  api_key_id: z.string().nullable(),
});

export async function instanceRow(db: DatabasePool, id: string) {
  return db.one(sql.type(InstanceDbRow)`
    SELECT id, status, node_id, assigned_port, access_token_hash, access_token_prefix, access_url,
      expires_at, deleted_at, error_message, config, api_key_id
    FROM mcp_instances WHERE id = ${id}
  `);
}

/** The ports of the pool held for an instance. */
export async function portsHeldBy(db: DatabasePool, instanceId: string) {
  return db.any(sql.type(z.object({ node_id: z.string(), port: z.number() }))`
    SELECT node_id, port FROM port_allocations WHERE mcp_instance_id = ${instanceId} AND NOT is_available
  `);
}

/**
 * A StartInstance that behaves like the real agent (agent/instance/instance-runtime.ts):
 * it records what it observed in the row, with its event, before answering.
 */
export function agentLikeStart(
  owner: DatabasePool,
  behaviour: 'run' | 'fail',
): AgentServiceHandlers['startInstance'] {
  const Changed = z.object({
    user_id: z.string().nullable(),
    assigned_port: z.number().nullable(),
  });
  return async (request) => {
    const instanceId = request.instanceId;
    if (behaviour === 'run') {
      const row = await owner.transaction(async (tx) => {
        const changed = await tx.maybeOne(sql.type(Changed)`
          UPDATE mcp_instances SET status = 'running', process_id = 4242, error_message = NULL
          WHERE id = ${instanceId} AND status = 'pending' RETURNING user_id, assigned_port
        `);
        if (changed)
          await insertEvent(tx, {
            instanceId,
            userId: changed.user_id,
            type: 'started',
            data: { pid: 4242, port: changed.assigned_port },
          });
        return changed;
      });
      return {
        instance: {
          instanceId,
          status: 'running',
          ready: true,
          pid: 4242,
          port: row?.assigned_port ?? 0,
        },
      };
    }
    const message = 'could not spawn the server: no such command';
    await owner.transaction(async (tx) => {
      const changed = await tx.maybeOne(sql.type(Changed)`
        UPDATE mcp_instances SET status = 'error', process_id = NULL, error_message = ${message}
        WHERE id = ${instanceId} RETURNING user_id, assigned_port
      `);
      await releasePortsOfInstance(tx, instanceId);
      if (changed)
        await insertEvent(tx, {
          instanceId,
          userId: changed.user_id,
          type: 'error',
          data: { code: 'SPAWN_FAILED', message },
        });
    });
    return {
      instance: { instanceId, status: 'error', error: { code: 'SPAWN_FAILED', message } },
    };
  };
}

export async function createHarness(options: { poolSize?: number } = {}): Promise<Harness> {
  const db = await createTestDatabase({ poolSize: options.poolSize ?? 10 });
  const certs = await createTestCertificates();
  // Few retries: an agent that is down should make a test wait little.
  const registry = createAgentRegistry({
    tls: certs.controlPlane,
    retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 100 },
  });
  const fakes: FakeAgent[] = [];

  return {
    db,
    certs,
    registry,
    async node(nodeOptions = {}) {
      const { portRangeStart = 3001, portRangeEnd = 3100, ...fakeOptions } = nodeOptions;
      const fake = await startFakeAgent({ tls: certs.agent, ...fakeOptions });
      fakes.push(fake);
      const node = await registerNode(db.owner, {
        name: `node-${randomUUID().slice(0, 8)}`,
        grpcAddress: fake.address,
        publicHost: '127.0.0.1',
        portRangeStart,
        portRangeEnd,
        capacity: portRangeEnd - portRangeStart + 1,
        agentVersion: 'fake',
      });
      return { fake, node };
    },
    service(config = {}, clock) {
      return createInstanceService({
        pool: db.app,
        agents: registry.forNode,
        // Quiet, as before the logger was required: tests assert on rows and answers.
        logger: createLogger({ level: 'silent' }),
        config: { heartbeatFreshSeconds: 60, startWaitMs: 2_000, notifyWaitMs: 1_000, ...config },
        ...(clock ? { clock } : {}),
      });
    },
    async user() {
      return (await makeUser(db.owner)).id;
    },
    async downAllNodes() {
      await db.owner.query(sql.unsafe`UPDATE nodes SET status = 'down'`);
    },
    async eventTypes(instanceId) {
      const rows = await db.owner.any(sql.type(z.object({ event_type: z.string() }))`
        SELECT event_type FROM mcp_events WHERE mcp_instance_id = ${instanceId}
        ORDER BY created_at, id
      `);
      return rows.map((r) => r.event_type);
    },
    async seedInstance(input) {
      const type = await getTypeByName(db.owner, 'demo');
      const token = issueToken('access');
      const id = randomUUID();
      const port = await db.owner.transaction(async (tx) => {
        const claimed = await claimFreePort(tx, input.node.id, id);
        await insertInstance(tx, {
          id,
          userId: input.userId,
          mcpTypeId: type.id,
          apiKeyId: null,
          nodeId: input.node.id,
          accessTokenHash: token.hash,
          accessTokenPrefix: token.displayPrefix,
          accessUrl: `http://127.0.0.1:${claimed}/mcp`,
          expiresAt: input.expiresAt ?? new Date(Date.now() + 3_600_000),
        });
        await tx.query(sql.unsafe`
          UPDATE mcp_instances SET assigned_port = ${claimed}, status = ${input.status ?? 'running'}
          WHERE id = ${id}
        `);
        await insertEvent(tx, { instanceId: id, userId: input.userId, type: 'created' });
        return claimed;
      });
      return { id, port };
    },
    async close() {
      try {
        registry.close();
        await Promise.all(fakes.map((fake) => fake.stop()));
      } finally {
        await db.drop();
      }
    },
  };
}
