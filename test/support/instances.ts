// Instances written the way the API writes them (placement, port, token hash,
// access URL, created event), for tests that exercise the agent directly.
import { randomUUID } from 'node:crypto';
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { sql } from 'slonik';
import { insertEvent } from '../../core/db/events.js';
import { insertInstance } from '../../lambdas/control/db/instance-changes.js';
import { getTypeByName } from './queries.js';
import { placeInstance } from '../../lambdas/control/db/placement.js';
import { issueToken } from '../../core/tokens.js';

export interface TestInstance {
  id: string;
  token: string;
  port: number;
  url: string;
  nodeId: string;
}

export async function createInstanceRow(
  pool: DatabasePool,
  input: {
    userId: string;
    type?: string;
    expiresInMs?: number;
    apiKeyId?: string | null;
    config?: Record<string, unknown>;
  },
): Promise<TestInstance> {
  return pool.transaction(async (tx: CommonQueryMethods) => {
    const id = randomUUID();
    const placement = await placeInstance(tx, id, { heartbeatFreshSeconds: 60 });
    const type = await getTypeByName(tx, input.type ?? 'demo');
    const token = issueToken('access');
    const url = `http://${placement.node.public_host}:${placement.port}/mcp`;
    await insertInstance(tx, {
      id,
      userId: input.userId,
      mcpTypeId: type.id,
      apiKeyId: input.apiKeyId ?? null,
      nodeId: placement.node.id,
      accessTokenHash: token.hash,
      accessTokenPrefix: token.displayPrefix,
      accessUrl: url,
      expiresAt: new Date(Date.now() + (input.expiresInMs ?? 60 * 60_000)),
      config: input.config ?? {},
    });
    await tx.query(
      sql.unsafe`UPDATE mcp_instances SET assigned_port = ${placement.port} WHERE id = ${id}`,
    );
    await insertEvent(tx, { instanceId: id, userId: input.userId, type: 'created' });
    return { id, token: token.token, port: placement.port, url, nodeId: placement.node.id };
  });
}
