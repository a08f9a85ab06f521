// The agent re-reads system_settings while it runs: a lowered
// process.max_memory_mb ends a running instance at the next samples, with no
// restart of the agent.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { startAgentHarness, type AgentHarness } from '../../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeUser } from '../../../support/fixtures.js';
import { createInstanceRow } from '../../../support/instances.js';
import { putSetting } from '../../../support/queries.js';
import { waitFor } from '../../../support/wait.js';

let db: TestDatabase;
let harness: AgentHarness;

beforeAll(async () => {
  db = await createTestDatabase();
  harness = await startAgentHarness({
    databaseUrl: db.agentUrl,
    portCount: 2,
    env: { MINIMCP_SETTINGS_REFRESH_SECONDS: '1', MINIMCP_WARM_POOL: '0' },
  });
});
afterAll(async () => {
  await harness?.stop().catch(() => undefined);
  await db?.drop();
});

const Row = z.object({ status: z.string(), error_message: z.string().nullable() });

describe('settings while the agent runs', () => {
  it('applies a lowered memory limit to a running instance without a restart', async () => {
    const userId = (await makeUser(db.owner)).id;
    const instance = await createInstanceRow(db.owner, { userId });
    const started = await harness.client.startInstance({ instanceId: instance.id });
    expect(started.instance.pid).toBeGreaterThan(0);
    // Sampled (and judged) under the seeded 512 MB: still running.
    const before = await waitFor('a usage sample of the instance', () =>
      db.owner
        .maybeOne(
          sql.type(Row)`
        SELECT status, error_message FROM mcp_instances
        WHERE id = ${instance.id} AND (stats->>'rss_bytes')::bigint > 0
      `,
        )
        .then((row) => row ?? undefined),
    );
    expect(before.status).toBe('running');

    await putSetting(db.owner, 'process.max_memory_mb', 16);
    const after = await waitFor('the instance ended by the new limit', async () => {
      const row = await db.owner.one(sql.type(Row)`
        SELECT status, error_message FROM mcp_instances WHERE id = ${instance.id}
      `);
      return row.status === 'error' ? row : undefined;
    });
    expect(after.error_message).toMatch(/memory \d+ MB is over the limit of 16 MB/);
  });
});
