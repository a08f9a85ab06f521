// Rows for tests, written through the owner pool (RLS does not apply to it).
import { randomUUID } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { type InstanceRow } from '../../core/db/instances.js';
import { insertInstance } from '../../lambdas/control/db/instance-changes.js';
import { getTypeByName, findNodeByName } from './queries.js';
import { registerNode, type NodeRow } from '../../core/db/nodes.js';
import { insertUser, type UserRow } from '../../lambdas/control/db/users.js';
import { issueToken } from '../../core/tokens.js';
import { upsertApiKey, type ApiKeyRow } from '../../core/db/api-keys.js';

export async function makeUser(
  db: CommonQueryMethods,
  overrides: { email?: string; name?: string } = {},
): Promise<UserRow> {
  const id = randomUUID().slice(0, 8);
  return insertUser(db, {
    email: overrides.email ?? `user-${id}@example.test`,
    passwordHash: 'not-a-real-hash',
    name: overrides.name ?? `User ${id}`,
  });
}

export async function makeNode(
  db: CommonQueryMethods,
  overrides: { name?: string; portRangeStart?: number; portRangeEnd?: number } = {},
): Promise<NodeRow> {
  return registerNode(db, {
    name: overrides.name ?? `node-${randomUUID().slice(0, 8)}`,
    grpcAddress: '127.0.0.1:50051',
    publicHost: '127.0.0.1',
    portRangeStart: overrides.portRangeStart ?? 3001,
    portRangeEnd: overrides.portRangeEnd ?? 3100,
    capacity: 100,
    agentVersion: 'test',
  });
}

export async function localNode(db: CommonQueryMethods): Promise<NodeRow> {
  const node = await findNodeByName(db, 'local');
  if (!node) throw new Error('seeded node "local" missing');
  return node;
}

export async function makeInstance(
  db: CommonQueryMethods,
  input: { userId: string; nodeId?: string | null; type?: string; expiresAt?: Date },
): Promise<InstanceRow> {
  const type = await getTypeByName(db, input.type ?? 'demo');
  const token = issueToken('access');
  return insertInstance(db, {
    userId: input.userId,
    mcpTypeId: type.id,
    apiKeyId: null,
    nodeId: input.nodeId ?? null,
    accessTokenHash: token.hash,
    accessTokenPrefix: token.displayPrefix,
    accessUrl: 'http://127.0.0.1:0/mcp',
    expiresAt: input.expiresAt ?? new Date(Date.now() + 60 * 60_000),
  });
}

export async function count(db: CommonQueryMethods, table: string): Promise<number> {
  return db.oneFirst(
    sql.type(
      z.object({ n: z.number() }),
    )`SELECT count(*)::int AS n FROM ${sql.identifier([table])}`,
  );
}

/** A stored key for tests that never decrypt it: the envelope's shape, around nothing. */
export async function makeApiKey(
  db: CommonQueryMethods,
  input: { userId: string; type: string; hint?: string; expiresAt?: Date | null },
): Promise<ApiKeyRow> {
  const type = await getTypeByName(db, input.type);
  return upsertApiKey(db, {
    userId: input.userId,
    mcpTypeId: type.id,
    envelope: {
      ciphertext: 'eA==',
      iv: '00'.repeat(12),
      authTag: '00'.repeat(16),
      wrappedDataKey: 'eA==',
      provider: 'local',
      masterKeyId: 'local:test',
      version: 1,
    },
    hint: input.hint ?? '…1234',
    expiresAt: input.expiresAt ?? null,
  });
}
