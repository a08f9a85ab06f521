// The agent refuses to start an instance whose key was disabled or has expired
// since the instance was made (a restart, a move, a re-attach: admission is
// not asked again), as it does for a deleted key: StartInstance answers
// KEY_MISSING with a message the owner can act on, the row is left in `error`
// with it, and no child starts. The same key enabled again runs.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createEnvelopeCipher } from '../../../../core/crypto/envelope.js';
import { createLocalKeyProvider } from '../../../../core/crypto/local-provider.js';
import { upsertApiKey, type ApiKeyRow } from '../../../../core/db/api-keys.js';
import { startAgentHarness, type AgentHarness } from '../../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeUser } from '../../../support/fixtures.js';
import { createInstanceRow } from '../../../support/instances.js';
import { getTypeByName } from '../../../support/queries.js';

const KEY = `ghp_${'k'.repeat(36)}`;

describe('the agent and an instance’s key', () => {
  let db: TestDatabase;
  let harness: AgentHarness;
  let userId: string;
  let key: ApiKeyRow;

  beforeAll(async () => {
    db = await createTestDatabase();
    harness = await startAgentHarness({
      databaseUrl: db.agentUrl,
      env: {
        MINIMCP_WARM_POOL: '0',
        // A child must not reach the real service: nothing listens here.
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: 'http://127.0.0.1:9' }),
      },
    });
    userId = (await makeUser(db.owner)).id;
    const cipher = createEnvelopeCipher({
      provider: await createLocalKeyProvider({ masterKeyBase64: harness.masterKeyBase64 }),
    });
    key = await upsertApiKey(db.owner, {
      userId,
      mcpTypeId: (await getTypeByName(db.owner, 'github')).id,
      envelope: await cipher.encrypt(KEY, { userId, mcpType: 'github' }),
      hint: '…kkkk',
      expiresAt: null,
    });
  });
  afterAll(async () => {
    await harness?.stop().catch(() => undefined);
    await db?.drop();
  });

  const setKey = (fields: { active: boolean; expiresAt: string | null }) =>
    db.owner.query(sql.unsafe`
      UPDATE api_keys SET is_active = ${fields.active}, expires_at = ${fields.expiresAt}::timestamptz
      WHERE id = ${key.id}`);

  /** Starts a new github instance with the key; the answer and the row after it. */
  async function start() {
    const instance = await createInstanceRow(db.owner, {
      userId,
      type: 'github',
      apiKeyId: key.id,
    });
    const answer = await harness.client.startInstance({ instanceId: instance.id });
    const row = await db.owner.one(
      sql.type(
        z.object({ status: z.string(), error_message: z.string().nullable() }),
      )`SELECT status, error_message FROM mcp_instances WHERE id = ${instance.id}`,
    );
    return { answer: answer.instance, row };
  }

  it('refuses a disabled key, saying how to enable it', async () => {
    await setKey({ active: false, expiresAt: null });
    const { answer, row } = await start();
    const message =
      'the github key of this instance is disabled: enable it with POST /v1/keys/github/enable, then restore the instance';
    expect(answer).toMatchObject({
      status: 'error',
      pid: 0,
      error: { code: 'KEY_MISSING', message },
    });
    expect(row).toEqual({ status: 'error', error_message: message });
  });

  it('refuses an expired key, saying when it expired and what to do', async () => {
    await setKey({ active: true, expiresAt: '2026-01-02T03:04:05Z' });
    const { answer, row } = await start();
    const message =
      'the github key of this instance expired at 2026-01-02T03:04:05.000Z: store a new one with PUT /v1/keys/github, then restore the instance';
    expect(answer).toMatchObject({ status: 'error', error: { code: 'KEY_MISSING', message } });
    expect(row.error_message).toBe(message);
    expect(JSON.stringify(answer)).not.toContain(KEY);
  });

  it('runs with the same key enabled and unexpired (the control)', async () => {
    await setKey({ active: true, expiresAt: null });
    const { answer, row } = await start();
    expect(answer).toMatchObject({ status: 'running', error: null });
    expect(row.status).toBe('running');
  });
});
