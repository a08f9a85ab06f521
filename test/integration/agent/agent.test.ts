// The host agent end to end on one node: it registers, turns instance rows
// into running MCP servers behind their ports, and expires, stops and shuts
// them down writing the rows and events that say so.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createDatabasePool, type DatabasePool } from '../../../core/db/pool.js';
import { createLogger } from '../../../core/logger.js';
import { findNodeByName } from '../../support/queries.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { makeUser } from '../../support/fixtures.js';
import { startAgentHarness, type AgentHarness } from '../../support/agent-harness.js';
import { createInstanceRow } from '../../support/instances.js';
import { portOpen, processGone, waitFor } from '../../support/wait.js';
import { connectMcpClient } from '../../support/mcp-client.js';

const connect = (url: string, token: string) => connectMcpClient(url, token, 'agent-test');

const eventsOf = (db: TestDatabase, id: string) =>
  db.owner.any(sql.type(z.object({ event_type: z.string() }))`
    SELECT event_type FROM mcp_events WHERE mcp_instance_id = ${id} ORDER BY created_at, event_type`);

describe('host agent', () => {
  let db: TestDatabase;
  let harness: AgentHarness;
  let userId: string;
  let nodeName: string;
  /** Every line the agent logged; warnings and errors also go to stdout, as by default. */
  const agentLog: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'info',
    name: 'test-agent',
    destination: {
      write(line: string) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        agentLog.push(entry);
        if (entry.level !== 'info') process.stdout.write(line);
      },
    },
  });

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    nodeName = `agent-test-${process.pid}`;
    harness = await startAgentHarness({ databaseUrl: db.agentUrl, nodeName, logger });
  });
  afterAll(async () => {
    await harness?.stop().catch(() => undefined);
    await db.drop();
  });

  it('registers its node as active with its port pool', async () => {
    const node = await findNodeByName(db.owner, nodeName);
    expect(node).toMatchObject({
      status: 'active',
      port_range_start: harness.portRange.start,
      port_range_end: harness.portRange.end,
    });
    expect(node?.last_heartbeat).toBeInstanceOf(Date);
  });

  it('starts an instance on StartInstance and serves it over Streamable HTTP with its token', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    const answer = await harness.client.startInstance({ instanceId: instance.id });
    expect(answer.instance).toMatchObject({
      status: 'running',
      ready: true,
      port: instance.port,
      error: null,
    });

    const row = await db.owner.one(sql.type(
      z.object({ status: z.string(), process_id: z.number().nullable() }),
    )`
      SELECT status, process_id FROM mcp_instances WHERE id = ${instance.id}`);
    expect(row.status).toBe('running');
    expect(row.process_id).toBe(answer.instance.pid);

    const client = await connect(instance.url, instance.token);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('echo');
    const echoed = await client.callTool({
      name: 'echo',
      arguments: { text: 'hello through the gateway' },
    });
    expect(JSON.stringify(echoed.content)).toContain('hello through the gateway');
    await client.close();

    const wrong = await fetch(instance.url, {
      method: 'POST',
      headers: {
        Authorization: 'Bearer mcp_wrong',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);

    expect((await eventsOf(db, instance.id)).map((e) => e.event_type)).toEqual([
      'created',
      'started',
    ]);
    // A repeated StartInstance (a retry) changes nothing and says what runs.
    const again = await harness.client.startInstance({ instanceId: instance.id });
    expect(again.instance).toMatchObject({
      status: 'running',
      pid: answer.instance.pid,
      port: instance.port,
    });
    expect((await eventsOf(db, instance.id)).length).toBe(2);
  });

  it('starts a row created without a gRPC call on its next reconcile pass', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    await waitFor('reconciled start', async () => (await portOpen(instance.port)) || undefined);
    await waitFor(
      'running row',
      async () =>
        (await db.owner.oneFirst(
          sql.unsafe`SELECT status FROM mcp_instances WHERE id = ${instance.id}`,
        )) === 'running',
    );
  });

  it('expires an instance at expires_at: port closed, child gone, row expired, port released, event written', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    const started = await harness.client.startInstance({ instanceId: instance.id });
    expect(started.instance).toMatchObject({ status: 'running' });
    const pid = started.instance.pid;
    expect(await portOpen(instance.port)).toBe(true);
    // Due in a moment: set after the start, so a slow start on a loaded machine
    // cannot expire it first. The reconcile pass re-arms the agent's timer.
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET expires_at = now() + interval '1 second' WHERE id = ${instance.id}`,
    );
    await waitFor(
      'expired row',
      async () =>
        (await db.owner.oneFirst(
          sql.unsafe`SELECT status FROM mcp_instances WHERE id = ${instance.id}`,
        )) === 'expired',
    );
    expect(await portOpen(instance.port)).toBe(false);
    expect(processGone(pid)).toBe(true);
    const port = await db.owner.one(sql.type(
      z.object({ is_available: z.boolean(), mcp_instance_id: z.string().nullable() }),
    )`
      SELECT is_available, mcp_instance_id FROM port_allocations WHERE node_id = ${instance.nodeId} AND port = ${instance.port}`);
    expect(port).toEqual({ is_available: true, mcp_instance_id: null });
    expect((await eventsOf(db, instance.id)).map((e) => e.event_type)).toContain('expired');
  });

  it('stops a deleted instance on StopInstance and frees its port', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    const started = await harness.client.startInstance({ instanceId: instance.id });
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET deleted_at = now() WHERE id = ${instance.id}`,
    );
    await db.owner.query(
      sql.unsafe`UPDATE port_allocations SET is_available = true, mcp_instance_id = NULL WHERE mcp_instance_id = ${instance.id}`,
    );
    await harness.client.stopInstance({ instanceId: instance.id, reason: 'STOP_REASON_DELETED' });
    expect(await portOpen(instance.port)).toBe(false);
    await waitFor('child gone', () => processGone(started.instance.pid));
  });

  it("logs each command with the caller's request id, so one create can be followed from the API into the agent", async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    // What the API's instance service sends: its own request id (lambdas/control/instance-service.ts).
    await harness.client.startInstance({
      instanceId: instance.id,
      requestId: 'req-create-1',
      reason: 'START_REASON_CREATED',
    });
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET deleted_at = now() WHERE id = ${instance.id}`,
    );
    await harness.client.stopInstance({
      instanceId: instance.id,
      requestId: 'req-delete-1',
      reason: 'STOP_REASON_DELETED',
    });

    expect(agentLog).toContainEqual(
      expect.objectContaining({
        msg: 'StartInstance answered',
        request_id: 'req-create-1',
        instance_id: instance.id,
        status: 'running',
      }),
    );
    expect(agentLog).toContainEqual(
      expect.objectContaining({
        msg: 'StopInstance answered',
        request_id: 'req-delete-1',
        instance_id: instance.id,
        stopped_as: 'deleted',
      }),
    );
  });

  it('ships the child stderr and its lifecycle records to mcp_logs with the key redacted', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    expect(
      (await harness.client.startInstance({ instanceId: instance.id })).instance,
    ).toMatchObject({
      status: 'running',
    });
    const client = await connect(instance.url, instance.token);
    await client
      .callTool({
        name: 'log_to_stderr',
        arguments: { message: 'ERROR: something broke', level: 'error' },
      })
      .catch(() => undefined);
    await client.close();
    const rows = await waitFor('logs', async () => {
      const logs = await db.owner.any(sql.type(
        z.object({ level: z.string(), source: z.string(), message: z.string() }),
      )`
        SELECT level, source, message FROM mcp_logs WHERE mcp_instance_id = ${instance.id}`);
      return logs.some((l) => l.source === 'access') &&
        logs.some((l) => l.message.includes('ready in'))
        ? logs
        : undefined;
    });
    expect(rows.some((l) => l.source === 'system' && l.message.startsWith('spawned pid'))).toBe(
      true,
    );
  });

  it('reports usage into mcp_instances.stats and last_accessed', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    expect(
      (await harness.client.startInstance({ instanceId: instance.id })).instance,
    ).toMatchObject({
      status: 'running',
    });
    const client = await connect(instance.url, instance.token);
    await client.listTools();
    await client.close();
    const stats = await waitFor('stats', async () => {
      const row = await db.owner.one(sql.type(
        z.object({
          stats: z.record(z.string(), z.unknown()).nullable(),
          last_accessed: z.date().nullable(),
        }),
      )`
        SELECT stats, last_accessed FROM mcp_instances WHERE id = ${instance.id}`);
      return row.last_accessed && Number(row.stats?.requests) > 0 ? row : undefined;
    });
    expect(stats.stats).toMatchObject({ restarts: 0 });
    expect(Number(stats.stats?.rss_bytes)).toBeGreaterThan(0);
  });

  it('shows the new pid in stats as soon as a restarted child runs, not at the next sample', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    const started = await harness.client.startInstance({ instanceId: instance.id });
    expect(started.instance).toMatchObject({ status: 'running' });
    const rowOf = () =>
      db.owner.one(sql.type(
        z.object({ process_id: z.number().nullable(), pid: z.number().nullable() }),
      )`
        SELECT process_id, (stats->>'pid')::int AS pid FROM mcp_instances WHERE id = ${instance.id}`);
    expect(await rowOf()).toEqual({ process_id: started.instance.pid, pid: started.instance.pid });

    process.kill(started.instance.pid, 'SIGKILL'); // the supervisor restarts it
    const restarted = await waitFor('a restarted child', async () => {
      const row = await rowOf();
      return row.process_id !== null && row.process_id !== started.instance.pid ? row : undefined;
    });
    expect(restarted.pid).toBe(restarted.process_id);

    // A stop clears the pid and keeps the rest of stats (jsonb_set would have nulled them all).
    await db.owner.query(sql.unsafe`
      UPDATE mcp_instances SET stats = stats || '{"kept": 1}'::jsonb, deleted_at = now() WHERE id = ${instance.id}`);
    await harness.client.stopInstance({ instanceId: instance.id, reason: 'STOP_REASON_DELETED' });
    const stopped = await waitFor('the stop recorded', async () => {
      const row = await db.owner.one(
        sql.type(
          z.object({
            process_id: z.number().nullable(),
            stats: z.record(z.string(), z.unknown()).nullable(),
          }),
        )`SELECT process_id, stats FROM mcp_instances WHERE id = ${instance.id}`,
      );
      return row.process_id === null ? row : undefined;
    });
    expect(stopped.stats).toMatchObject({ kept: 1, pid: null });
  });

  it('refuses a second agent with the same node name', async () => {
    await expect(startAgentHarness({ databaseUrl: db.agentUrl, nodeName })).rejects.toThrow(
      /already running as node/,
    );
  });

  it('on shutdown stops every child, marks instances disconnected with an event, releases ports and marks the node down', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    const started = await harness.client.startInstance({ instanceId: instance.id });
    expect(started.instance).toMatchObject({ status: 'running' });
    await harness.stop();
    expect(processGone(started.instance.pid)).toBe(true);
    const owner: DatabasePool = db.owner;
    expect(
      await owner.oneFirst(sql.unsafe`SELECT status FROM mcp_instances WHERE id = ${instance.id}`),
    ).toBe('disconnected');
    expect((await eventsOf(db, instance.id)).map((e) => e.event_type)).toContain('disconnected');
    expect(
      await owner.oneFirst(
        sql.unsafe`SELECT count(*)::int FROM port_allocations WHERE mcp_instance_id = ${instance.id}`,
      ),
    ).toBe(0);
    expect((await findNodeByName(owner, nodeName))?.status).toBe('down');
    void createDatabasePool;
  });
});
