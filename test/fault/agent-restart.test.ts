// The agent is killed with SIGKILL while 50 instances run. Their children do
// not notice (their stdio is on FIFOs they hold themselves); a new agent takes
// them over from its children records — same processes, ports and tokens, a
// `reattached` event each — and converges the rest to the database: a row
// created while no agent ran is started, the child of a row deleted meanwhile
// is killed, and one whose config changed is started anew. No port leaks, no
// orphan is left.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { sql } from 'slonik';
import { z } from 'zod';
import { findNodeByName } from '../support/queries.js';
import { releasePortsOfInstance } from '../../core/db/ports.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { DIST_ROOT, randomPortRange } from '../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { makeUser } from '../support/fixtures.js';
import { createInstanceRow, type TestInstance } from '../support/instances.js';
import { processGone, waitFor } from '../support/wait.js';
import { connectMcpClient } from '../support/mcp-client.js';

const INSTANCES = Number(process.env.MINIMCP_RESTART_TEST_INSTANCES ?? 50);
/**
 * A budget against a hang, not a speed check: 50 Node children starting on a
 * loaded 2-core CI machine can take a minute or more (the speed is measured
 * by `npm run bench -- restart`).
 */
const START_BUDGET_MS = 180_000;

const RuntimeRow = z.object({
  id: z.string(),
  status: z.string(),
  process_id: z.number().nullable(),
  assigned_port: z.number().nullable(),
});

describe('agent restart after SIGKILL', () => {
  let db: TestDatabase;
  let dataDir: string;
  let agentProcess: ChildProcess | undefined;
  let output = '';
  const nodeName = `restart-${randomBytes(3).toString('hex')}`;
  const portRange = randomPortRange(INSTANCES + 5);
  const masterKey = randomBytes(32).toString('base64');
  let grpcPort: number;
  let userId: string;

  const spawnAgent = () => {
    const child = spawn(process.execPath, [path.join(DIST_ROOT, 'agent/main.js')], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: db.agentUrl,
        MINIMCP_DATA_DIR: dataDir,
        MINIMCP_NODE_NAME: nodeName,
        MINIMCP_PORT_RANGE: `${portRange.start}-${portRange.end}`,
        MINIMCP_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
        MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
        MINIMCP_MASTER_KEY: masterKey,
        MINIMCP_HEARTBEAT_SECONDS: '1',
        MINIMCP_RECONCILE_SECONDS: '1',
        LOG_LEVEL: 'warn',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on(
      'data',
      (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)),
    );
    child.stderr?.on(
      'data',
      (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)),
    );
    agentProcess = child;
    return child;
  };

  const rows = (ids: string[]) =>
    db.owner.any(sql.type(RuntimeRow)`
      SELECT id::text, status, process_id, assigned_port FROM mcp_instances WHERE id = ANY(${sql.array(ids, 'uuid')})`);

  const allRunning = async (ids: string[]) => {
    const current = await rows(ids);
    return current.length === ids.length &&
      current.every((r) => r.status === 'running' && r.process_id !== null)
      ? current
      : undefined;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-restart-'));
    grpcPort = await findFreePort();
    userId = (await makeUser(db.owner)).id;
  });

  afterAll(async () => {
    if (agentProcess && agentProcess.exitCode === null) {
      agentProcess.kill('SIGTERM');
      await new Promise((resolve) => agentProcess?.once('exit', resolve));
    }
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it(`takes over ${INSTANCES} running instances: same processes, ports and tokens`, async () => {
    spawnAgent();
    await waitFor(
      'node registered',
      async () => (await findNodeByName(db.owner, nodeName))?.status === 'active',
      30_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; agent output: ${output}`);
    });

    if (agentProcess?.exitCode !== null) throw new Error(`agent exited: ${output}`);
    const instances: TestInstance[] = [];
    for (let i = 0; i < INSTANCES; i++)
      instances.push(await createInstanceRow(db.owner, { userId }));
    const ids = instances.map((i) => i.id);
    const before = await waitFor('all running', () => allRunning(ids), START_BUDGET_MS);
    const pidsBefore = new Set(before.map((r) => r.process_id!));

    // A client connected before the kill keeps its session through the restart.
    const lasting = instances[2]!;
    const lastingTransport = new StreamableHTTPClientTransport(new URL(lasting.url), {
      requestInit: { headers: { Authorization: `Bearer ${lasting.token}` } },
    });
    const lastingClient = new Client({ name: 'restart-test-lasting', version: '1.0.0' });
    // Its event stream breaks with the agent; what matters is its next request.
    lastingClient.onerror = () => undefined;
    await lastingClient.connect(lastingTransport);
    const toolsBefore = (await lastingClient.listTools()).tools.length;
    const sessionId = lastingTransport.sessionId;
    expect(sessionId).toBeDefined();

    agentProcess!.kill('SIGKILL');
    await new Promise((resolve) => agentProcess!.once('exit', resolve));
    // The children outlive it: their stdin did not close.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect([...pidsBefore].filter(processGone)).toEqual([]);

    const pidOf = new Map(before.map((r) => [r.id, r.process_id!]));
    const createdWhileDown = await createInstanceRow(db.owner, { userId });
    const deletedWhileDown = instances.pop()!;
    // As the API deletes: the row marked, its port released, in one transaction.
    await db.owner.transaction(async (tx) => {
      await tx.query(sql.unsafe`
        UPDATE mcp_instances SET deleted_at = now() WHERE id = ${deletedWhileDown.id}`);
      await releasePortsOfInstance(tx, deletedWhileDown.id);
    });
    const changedWhileDown = instances[1]!;
    await db.owner.query(sql.unsafe`
      UPDATE mcp_instances SET config = '{"timeout_ms": 5000}' WHERE id = ${changedWhileDown.id}`);
    ids.splice(ids.indexOf(deletedWhileDown.id), 1);
    ids.push(createdWhileDown.id);
    instances.push(createdWhileDown);

    spawnAgent();
    const after = await waitFor(
      'all running again',
      async () => {
        const current = await allRunning(ids);
        // The changed one runs with its new config: a new process.
        return current?.find((r) => r.id === changedWhileDown.id)?.process_id ===
          pidOf.get(changedWhileDown.id)
          ? undefined
          : current;
      },
      START_BUDGET_MS,
    );

    const portsById = new Map(after.map((r) => [r.id, r.assigned_port]));
    for (const instance of instances) expect(portsById.get(instance.id)).toBe(instance.port);
    const kept = instances.filter(
      (instance) => instance !== createdWhileDown && instance !== changedWhileDown,
    );
    const pidsAfter = new Map(after.map((r) => [r.id, r.process_id]));
    for (const instance of kept) expect(pidsAfter.get(instance.id)).toBe(pidOf.get(instance.id));
    // The children of the deleted and the changed rows are gone, not orphaned.
    await waitFor('replaced children gone', () =>
      [deletedWhileDown, changedWhileDown].every((instance) =>
        processGone(pidOf.get(instance.id)!),
      ),
    );

    // Same session, no new initialize: the new agent kept it with the child it took over.
    expect((await lastingClient.listTools()).tools.length).toBe(toolsBefore);
    expect(lastingTransport.sessionId).toBe(sessionId);
    await lastingClient.close();

    for (const instance of [instances[0]!, changedWhileDown, createdWhileDown]) {
      const client = await connectMcpClient(instance.url, instance.token, 'restart-test');
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      await client.close();
    }

    const events = await db.owner.any(
      sql.type(z.object({ id: z.string(), type: z.string(), n: z.number() }))`
        SELECT mcp_instance_id::text AS id, event_type AS type, count(*)::int AS n FROM mcp_events
        WHERE event_type IN ('started', 'reattached') AND mcp_instance_id = ANY(${sql.array(ids, 'uuid')})
        GROUP BY mcp_instance_id, event_type`,
    );
    const count = (id: string, type: string) =>
      events.find((e) => e.id === id && e.type === type)?.n ?? 0;
    for (const instance of kept) {
      expect(count(instance.id, 'started')).toBe(1);
      expect(count(instance.id, 'reattached')).toBe(1);
    }
    expect(count(changedWhileDown.id, 'started')).toBe(2);
    expect(count(createdWhileDown.id, 'started')).toBe(1);

    const held = await db.owner.oneFirst(sql.unsafe`
      SELECT count(*)::int FROM port_allocations pa JOIN nodes n ON n.id = pa.node_id
      WHERE n.name = ${nodeName} AND NOT pa.is_available`);
    // One deleted, one created while the agent was down.
    expect(held).toBe(INSTANCES);

    agentProcess!.kill('SIGTERM');
    const code = await new Promise((resolve) => agentProcess!.once('exit', resolve));
    expect(code).toBe(0);
    const gone = await rows(ids);
    expect(gone.every((r) => r.status === 'disconnected')).toBe(true);
    // A clean stop stops every child, re-attached or not, and leaves no record.
    expect(after.map((r) => r.process_id!).filter((pid) => !processGone(pid))).toEqual([]);
    expect(readdirSync(path.join(dataDir, `agent-${nodeName}`, 'children'))).toEqual([]);
  }, 600_000);
});
