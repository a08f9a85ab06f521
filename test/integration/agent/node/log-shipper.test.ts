// The log shipper against a PostgreSQL server of its own that the test stops
// and restarts under load: every line lands exactly once, in order of spooling;
// and a child flooding stderr through the supervisor is slowed, never dropped.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import { createLogShipper } from '../../../../agent/node/log-shipper.js';
import { createSupervisor } from '../../../../agent/child/supervisor.js';
import { migrate } from '../../../../lambdas/control/db/migrate.js';
import { createDatabasePool, type DatabasePool } from '../../../../core/db/pool.js';
import {
  startPostgresServer,
  type PostgresServer,
} from '../../../../infra/local/postgres-server.js';
import { makeInstance, makeUser } from '../../../support/fixtures.js';
import { waitFor } from '../../../support/wait.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/children/', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('log shipper', () => {
  let workDir: string;
  let server: PostgresServer;
  let port: number;
  let owner: DatabasePool;
  let agent: DatabasePool;
  let instanceId: string;

  const start = async () => {
    server = await startPostgresServer({
      dataDir: path.join(workDir, 'data'),
      port,
      password: 'pw',
      ephemeral: true,
    });
    port = server.port;
  };

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-shipper-'));
    await chmod(workDir, 0o711); // the postgres user (when we are root) must traverse it
    port = 0;
    await start();
    const client = new pg.Client({ connectionString: server.url('postgres') });
    await client.connect();
    await client.query('CREATE DATABASE shipper');
    await client.end();
    await migrate({ databaseUrl: server.url('shipper'), direction: 'up' });
    const roleClient = new pg.Client({ connectionString: server.url('shipper') });
    await roleClient.connect();
    await roleClient.query(`ALTER ROLE minimcp_agent LOGIN PASSWORD 'agent-pw'`);
    await roleClient.end();
    owner = await createDatabasePool(server.url('shipper'));
    agent = await createDatabasePool(
      server.url('shipper').replace('postgres:pw@', 'minimcp_agent:agent-pw@'),
      {
        connectionTimeoutMs: 1000,
      },
    );
    const user = await makeUser(owner);
    instanceId = (await makeInstance(owner, { userId: user.id })).id;
  });

  afterAll(async () => {
    await agent?.end();
    await owner?.end();
    await server?.stop();
    if (server) await rm(server.dataDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
  });

  const linesOf = async (prefix: string) =>
    owner.one(
      sql.type(z.object({ total: z.number(), distinct_messages: z.number() }))`
        SELECT count(*)::int AS total, count(DISTINCT message)::int AS distinct_messages
        FROM mcp_logs WHERE message LIKE ${prefix + '%'}`,
    );

  it('ships batches as the agent role', async () => {
    const shipper = await createLogShipper({
      pool: agent,
      spoolDir: path.join(workDir, 'spool-a'),
    });
    for (let i = 0; i < 12_000; i++) {
      shipper.push({
        instanceId,
        timestamp: new Date(),
        level: 'info',
        source: 'process',
        message: `batch-${i}`,
      });
    }
    await shipper.close();
    expect(await linesOf('batch-')).toEqual({ total: 12_000, distinct_messages: 12_000 });
    expect(shipper.stats()).toMatchObject({
      shipped: 12_000,
      dropped: 0,
      queued: 0,
      spooledLines: 0,
    });
  });

  it('loses and duplicates nothing while PostgreSQL is stopped for a few seconds under load', async () => {
    const spoolDir = path.join(workDir, 'spool-b');
    const shipper = await createLogShipper({
      pool: agent,
      spoolDir,
      flushIntervalMs: 50,
      retryDelayMs: 100,
    });
    let sent = 0;
    let sawSpool = false;
    const produce = async (rounds: number) => {
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < 200; i++) {
          shipper.push({
            instanceId,
            timestamp: new Date(),
            level: 'info',
            source: 'process',
            message: `outage-${sent++}`,
          });
        }
        if (shipper.stats().spooledLines > 0) sawSpool = true;
        await sleep(10);
      }
    };

    await produce(30);
    await server.stop();
    await produce(100); // ~2 s of load with the database down
    await start();
    await produce(30);
    await shipper.close();

    expect(sawSpool).toBe(true);
    expect(shipper.stats()).toMatchObject({
      dropped: 0,
      spooledLines: 0,
      queued: 0,
      databaseReachable: true,
    });
    expect(await linesOf('outage-')).toEqual({ total: sent, distinct_messages: sent });
    expect(await readdir(spoolDir)).toEqual([]);
  });

  it('counts what a full spool drops and reports it as a log line', async () => {
    const shipper = await createLogShipper({
      pool: agent,
      spoolDir: path.join(workDir, 'spool-c'),
      flushIntervalMs: 20,
      retryDelayMs: 100,
      batchSize: 100,
      maxSpoolBytes: 20_000,
    });
    await server.stop();
    let sent = 0;
    for (let r = 0; r < 20; r++) {
      for (let i = 0; i < 100; i++) {
        shipper.push({
          instanceId,
          timestamp: new Date(),
          level: 'info',
          source: 'process',
          message: `full-${sent++}`,
        });
      }
      await sleep(25);
    }
    await shipper.flush();
    const { dropped } = shipper.stats();
    expect(dropped).toBeGreaterThan(0);
    await start();
    await shipper.close();

    const landed = await linesOf('full-');
    expect(landed.total).toBe(landed.distinct_messages);
    expect(landed.total + dropped).toBe(sent);
    const report = await owner.one(
      sql.type(z.object({ level: z.string(), source: z.string(), dropped: z.number() }))`
        SELECT level, source, (metadata->>'dropped_lines')::int AS dropped FROM mcp_logs
        WHERE message LIKE '%were dropped%'`,
    );
    expect(report).toEqual({ level: 'warn', source: 'system', dropped });
  });

  it('keeps shipping the good lines of a batch that holds a bad one', async () => {
    const shipper = await createLogShipper({
      pool: agent,
      spoolDir: path.join(workDir, 'spool-d'),
    });
    shipper.push({
      instanceId,
      timestamp: new Date(),
      level: 'info',
      source: 'process',
      message: 'mixed-1',
    });
    shipper.push({
      instanceId: '00000000-0000-4000-8000-000000000000',
      timestamp: new Date(),
      level: 'info',
      source: 'process',
      message: 'mixed-orphan',
    });
    shipper.push({
      instanceId,
      timestamp: new Date(),
      level: 'info',
      source: 'process',
      message: 'mixed-2',
    });
    await shipper.close();
    expect(await linesOf('mixed-')).toEqual({ total: 2, distinct_messages: 2 });
    expect(shipper.stats().dropped).toBe(1);
  });

  it('drops (and counts) what a producer pushes past twice its queue bound', async () => {
    const shipper = await createLogShipper({
      pool: agent,
      spoolDir: path.join(workDir, 'spool-f'),
      maxQueuedLines: 5,
      batchSize: 1000,
      flushIntervalMs: 60_000,
    });
    for (let i = 0; i < 25; i++) {
      shipper.push({
        instanceId,
        timestamp: new Date(),
        level: 'info',
        source: 'process',
        message: `cap-${i}`,
      });
    }
    expect(shipper.stats()).toMatchObject({ queued: 10, dropped: 15 });
    await shipper.close();
    expect(await linesOf('cap-')).toEqual({ total: 10, distinct_messages: 10 });
    const report = await owner.oneFirst(sql.unsafe`
      SELECT (metadata->>'dropped_lines')::int FROM mcp_logs WHERE message LIKE '%were dropped%' ORDER BY timestamp DESC LIMIT 1`);
    expect(report).toBe(15);
  });

  it('answers false when its queue is full, and calls back once it drains', async () => {
    const shipper = await createLogShipper({
      pool: agent,
      spoolDir: path.join(workDir, 'spool-e'),
      maxQueuedLines: 10,
      batchSize: 1000,
    });
    const answers = Array.from({ length: 10 }, (_, i) =>
      shipper.push({
        instanceId,
        timestamp: new Date(),
        level: 'debug',
        source: 'process',
        message: `bp-${i}`,
      }),
    );
    expect(answers.slice(0, 9).every(Boolean)).toBe(true);
    expect(answers[9]).toBe(false);
    const drained = new Promise<void>((resolve) => shipper.onDrain(resolve));
    await shipper.flush();
    await drained;
    await shipper.close();
    expect(await linesOf('bp-')).toEqual({ total: 10, distinct_messages: 10 });
  });

  it('pauses a flooding child while its queue is full: every line lands once, in order, none dropped', async () => {
    // A queue far smaller than the flood: the child must be held back, not dropped.
    const lines = 20_000;
    const shipper = await createLogShipper({
      pool: agent,
      spoolDir: path.join(workDir, 'spool-g'),
      maxQueuedLines: 500,
      batchSize: 200,
      flushIntervalMs: 20,
    });
    let peakQueued = 0;
    const supervisor = createSupervisor({
      command: process.execPath,
      args: [path.join(FIXTURES, 'numbered-flood.mjs')],
      env: { FLOOD_LINES: String(lines) },
      cwd: path.join(workDir, 'flood-child'),
      logLinesPerSecond: 1_000_000,
      logBurst: 1_000_000,
      onLog: (line) => {
        const room = shipper.push({
          instanceId,
          timestamp: new Date(line.at),
          level: 'info',
          source: line.stream === 'system' ? 'system' : 'process',
          message: line.text,
        });
        peakQueued = Math.max(peakQueued, shipper.stats().queued);
        return room;
      },
      whenLogRoom: (resume) => shipper.onDrain(resume),
    });
    try {
      await supervisor.start();
      await waitFor(
        'every flood line shipped',
        async () => ((await linesOf('numbered ')).total === lines ? true : undefined),
        60_000,
      );
    } finally {
      await supervisor.stop();
      await shipper.close();
    }

    expect(await linesOf('numbered ')).toEqual({ total: lines, distinct_messages: lines });
    expect(supervisor.droppedLogLines).toBe(0);
    expect(shipper.stats()).toMatchObject({ dropped: 0, queued: 0 });
    // Reading stopped at the bound (plus at most a slice of a chunk), far below the flood.
    expect(peakQueued).toBeLessThan(2 * 500);
    // Stored in the order written: timestamp, then the shipper's ordered ids.
    const outOfOrder = await owner.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM (
        SELECT split_part(message, ' ', 2)::int AS k,
               lag(split_part(message, ' ', 2)::int) OVER (ORDER BY timestamp, id) AS previous
        FROM mcp_logs WHERE message LIKE 'numbered %') ordered
      WHERE k <> previous + 1`);
    expect(outOfOrder).toBe(0);
  });
});
