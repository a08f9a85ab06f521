// The database is the source of truth: kill the agent with SIGKILL while 50
// instances run; no child outlives it for long, and a new agent brings every
// instance back on the same port with the same token, an event for each,
// no port leaked — plus a row created while the agent was down.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { sql } from 'slonik';
import { z } from 'zod';
import { findNodeByName } from '../../../core/db/nodes.js';
import { findFreePort } from '../../../infra/local/postgres-server.js';
import { DIST_ROOT, randomPortRange } from '../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { makeUser } from '../../support/fixtures.js';
import { createInstanceRow, type TestInstance } from '../../support/instances.js';
import { processGone, waitFor } from '../../support/wait.js';

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

  const allRunning = async (ids: string[], notPids: Set<number> = new Set()) => {
    const current = await rows(ids);
    return current.length === ids.length &&
      current.every(
        (r) => r.status === 'running' && r.process_id !== null && !notPids.has(r.process_id),
      )
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

  it(`brings ${INSTANCES} instances back on the same ports with the same tokens`, async () => {
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

    agentProcess!.kill('SIGKILL');
    await new Promise((resolve) => agentProcess!.once('exit', resolve));
    // Children exit when their supervisor's pipes close.
    await waitFor('children gone', () => [...pidsBefore].every(processGone), 15_000);

    const createdWhileDown = await createInstanceRow(db.owner, { userId });
    ids.push(createdWhileDown.id);
    instances.push(createdWhileDown);

    spawnAgent();
    const after = await waitFor(
      'all running again',
      () => allRunning(ids, pidsBefore),
      START_BUDGET_MS,
    );

    const portsById = new Map(after.map((r) => [r.id, r.assigned_port]));
    for (const instance of instances) expect(portsById.get(instance.id)).toBe(instance.port);

    for (const instance of [instances[0]!, createdWhileDown]) {
      const client = new Client({ name: 'restart-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(instance.url), {
          requestInit: { headers: { Authorization: `Bearer ${instance.token}` } },
        }),
      );
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      await client.close();
    }

    const started = await db.owner.any(
      sql.type(z.object({ id: z.string(), n: z.number() }))`
        SELECT mcp_instance_id::text AS id, count(*)::int AS n FROM mcp_events
        WHERE event_type = 'started' AND mcp_instance_id = ANY(${sql.array(ids, 'uuid')})
        GROUP BY mcp_instance_id`,
    );
    const startedById = new Map(started.map((s) => [s.id, s.n]));
    for (const instance of instances.slice(0, INSTANCES))
      expect(startedById.get(instance.id)).toBe(2);
    expect(startedById.get(createdWhileDown.id)).toBe(1);

    const held = await db.owner.oneFirst(sql.unsafe`
      SELECT count(*)::int FROM port_allocations pa JOIN nodes n ON n.id = pa.node_id
      WHERE n.name = ${nodeName} AND NOT pa.is_available`);
    expect(held).toBe(INSTANCES + 1);

    agentProcess!.kill('SIGTERM');
    const code = await new Promise((resolve) => agentProcess!.once('exit', resolve));
    expect(code).toBe(0);
    const gone = await rows(ids);
    expect(gone.every((r) => r.status === 'disconnected')).toBe(true);
  }, 600_000);
});
