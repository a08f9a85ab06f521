// An agent without MINIMCP_PORT_RANGE takes its port pool from the
// port.range_start/port.range_end settings at registration, and follows a
// change of them while it runs (no restart).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { portRangeOf } from '../../../../agent/node/node-registration.js';
import { randomPortRange, startAgentHarness } from '../../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { findNodeByName, putSetting } from '../../../support/queries.js';
import { waitFor } from '../../../support/wait.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

async function poolPorts(nodeId: string): Promise<number[]> {
  const rows = await db.owner.any(sql.type(z.object({ port: z.number() }))`
    SELECT port FROM port_allocations WHERE node_id = ${nodeId} ORDER BY port
  `);
  return rows.map((r) => r.port);
}

const span = (start: number, end: number) =>
  Array.from({ length: end - start + 1 }, (_, i) => start + i);

describe('the port pool', () => {
  it('is MINIMCP_PORT_RANGE when set, whatever the settings say', async () => {
    await putSetting(db.owner, 'port.range_start', 3001);
    await putSetting(db.owner, 'port.range_end', 3005);
    expect(await portRangeOf(db.owner, { MINIMCP_PORT_RANGE: { start: 4000, end: 4009 } })).toEqual(
      { start: 4000, end: 4009 },
    );
    expect(await portRangeOf(db.owner, {})).toEqual({ start: 3001, end: 3005 });
  });

  it('comes from the settings when MINIMCP_PORT_RANGE is unset, and follows their changes', async () => {
    const range = randomPortRange(8);
    await putSetting(db.owner, 'port.range_start', range.start);
    await putSetting(db.owner, 'port.range_end', range.start + 3);
    const harness = await startAgentHarness({
      databaseUrl: db.agentUrl,
      env: {
        // Empty means unset (core/config.ts).
        MINIMCP_PORT_RANGE: '',
        MINIMCP_SETTINGS_REFRESH_SECONDS: '1',
        MINIMCP_WARM_POOL: '0',
      },
    });
    try {
      const nodeId = harness.agent.node.id;
      expect(harness.agent.node).toMatchObject({
        port_range_start: range.start,
        port_range_end: range.start + 3,
        capacity: 4,
      });
      expect(await poolPorts(nodeId)).toEqual(span(range.start, range.start + 3));

      await putSetting(db.owner, 'port.range_end', range.end);
      const node = await waitFor('the node row on the new range', async () => {
        const row = await findNodeByName(db.owner, harness.agent.node.name);
        return row?.port_range_end === range.end ? row : undefined;
      });
      expect(node).toMatchObject({ port_range_start: range.start, capacity: 8 });
      expect(await poolPorts(nodeId)).toEqual(span(range.start, range.end));
      expect(harness.agent.node.capacity).toBe(8);
    } finally {
      await harness.stop();
    }
  });
});
