// Agent restart after SIGKILL: N running `demo` instances, the agent killed
// as a crash would, a new agent process started as the same node. How long
// until every instance runs again (taken over: same process, port and token —
// test/fault/agent-restart.test.ts proves that part), and
// until they answer through the gateway.
import { sql } from 'slonik';
import { z } from 'zod';
import { makeUser } from '../test/support/fixtures.js';
import { createInstanceRow, type TestInstance } from '../test/support/instances.js';
import type { Benchmark } from './support/benchmark.js';
import { connectHttpClient } from './support/mcp-load.js';
import { descendants, isAlive } from './support/proc.js';
import { mapLimit, sleep, startAgentProcess } from './support/stack.js';
import { fmt, round } from './support/stats.js';

const INSTANCES = Number(process.env.BENCH_RESTART_INSTANCES ?? 50);
const START_CONCURRENCY = 8;
const POLL_MS = 25;
const BUDGET_MS = 120_000;
const TARGET_SECONDS = 5;

const RuntimeRow = z.object({ status: z.string(), process_id: z.number().nullable() });
const Comeback = z.object({ type: z.string(), n: z.number() });

export const agentRestartBenchmark: Benchmark = {
  name: 'restart',
  title: `Agent restart after SIGKILL (${INSTANCES} demo instances)`,
  async run(ctx, report) {
    report.method.push(
      `One agent process (the agent bundle the nodes install, \`infra/agent-bundle\`, default settings) with ${INSTANCES} running \`demo\` instances, written the way the API writes them and started with gRPC StartInstance.`,
      'The agent is killed with SIGKILL; its children keep running (stdio on FIFOs they hold). A new agent process is started as the same node (name, state folder, ports, key) and takes them over from its children records.',
      `Timed from the new process's spawn: its gRPC Health answering; every instance \`running\` again in the database, with a \`reattached\` (or, for a child that could not be taken over, \`started\`) event written after the kill (polled every ${POLL_MS} ms); every instance answering \`tools/list\` through its gateway with its original token (one SDK client each, ${START_CONCURRENCY} at a time, from the moment all are running).`,
      'Orphans: children of the first agent still alive after the second one stopped cleanly (SIGTERM).',
    );
    const db = await ctx.database();
    const user = await makeUser(db.owner);
    const first = await startAgentProcess(ctx, { databaseUrl: db.agentUrl, portCount: INSTANCES });

    const rows: TestInstance[] = [];
    for (let i = 0; i < INSTANCES; i++)
      rows.push(await createInstanceRow(db.owner, { userId: user.id }));
    ctx.log(`restart: starting ${INSTANCES} instances`);
    await mapLimit(rows, START_CONCURRENCY, async (row) => {
      const answer = await first.grpc.startInstance({ instanceId: row.id });
      if (answer.instance.status !== 'running')
        throw new Error(`instance did not start: ${answer.instance.error?.message ?? ''}`);
    });
    const ids = rows.map((r) => r.id);
    const stateOf = () =>
      db.owner.any(
        sql.type(RuntimeRow)`
          SELECT status, process_id FROM mcp_instances WHERE id = ANY(${sql.array(ids, 'uuid')})`,
      );
    const oldPids = new Set((await stateOf()).map((r) => r.process_id));
    ctx.log('restart: SIGKILL');
    const children = descendants(first.pid);
    const killedAt = await db.owner.oneFirst(sql.type(z.object({ now: z.string() }))`
      SELECT clock_timestamp()::text AS now`);
    const comeback = () =>
      db.owner.any(
        sql.type(Comeback)`
          SELECT event_type AS type, count(DISTINCT mcp_instance_id)::int AS n FROM mcp_events
          WHERE event_type IN ('reattached', 'started') AND created_at > ${killedAt}
            AND mcp_instance_id = ANY(${sql.array(ids, 'uuid')})
          GROUP BY event_type`,
      );
    await first.kill();

    const spawnedAt = performance.now();
    const second = await startAgentProcess(ctx, {
      databaseUrl: db.agentUrl,
      portCount: INSTANCES,
      masterKeyBase64: first.masterKeyBase64,
      identity: first.identity,
    });
    const healthMs = performance.now() - spawnedAt;
    let runningMs: number | undefined;
    let reattached = 0;
    const deadline = Date.now() + BUDGET_MS;
    while (Date.now() < deadline) {
      const events = await comeback();
      const back = events.reduce((sum, e) => sum + e.n, 0);
      if (back === INSTANCES && (await stateOf()).every((r) => r.status === 'running')) {
        runningMs = performance.now() - spawnedAt;
        reattached = events.find((e) => e.type === 'reattached')?.n ?? 0;
        break;
      }
      await sleep(POLL_MS);
    }
    if (runningMs === undefined) throw new Error(`not all ${INSTANCES} instances came back`);
    const samePids = (await stateOf()).filter((r) => oldPids.has(r.process_id)).length;

    const failures: string[] = [];
    await mapLimit(rows, START_CONCURRENCY, async (row) => {
      try {
        const client = await connectHttpClient(row.url, { Authorization: `Bearer ${row.token}` });
        await client.listTools();
        await client.close();
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
    });
    const servingMs = performance.now() - spawnedAt;
    if (failures.length > 0) report.notes.push(`${failures.length} failed: ${failures[0]}`);
    // Its clean stop ends every child, the taken-over ones included (no child record left).
    const { cleanExit } = await second.stop(60_000);
    const goneDeadline = Date.now() + 10_000;
    while (children.some(isAlive) && Date.now() < goneDeadline) await sleep(POLL_MS);
    const orphans = children.filter(isAlive).length;

    report.tables.push({
      columns: ['from the new agent process spawn', 'seconds'],
      rows: [
        ['gRPC Health answers', fmt(healthMs / 1000)],
        [`all ${INSTANCES} running again (database)`, fmt(runningMs / 1000)],
        [`all ${INSTANCES} answered tools/list through the gateway`, fmt(servingMs / 1000)],
      ],
    });
    report.tables.push({
      columns: ['figure', 'value'],
      rows: [
        ['instances taken over (reattached, same pid)', `${reattached} (${samePids})`],
        ['children of the killed agent alive after the new one stopped', String(orphans)],
        ['new agent stopped cleanly (exit 0, no child left behind)', cleanExit ? 'yes' : 'no'],
        ['instances that failed tools/list after the restart', String(failures.length)],
      ],
    });
    Object.assign(report.figures, {
      instances: INSTANCES,
      health_seconds: round(healthMs / 1000, 2),
      all_running_seconds: round(runningMs / 1000, 2),
      all_serving_seconds: round(servingMs / 1000, 2),
      reattached,
      same_pids: samePids,
      orphans,
      failures: failures.length,
    });
    report.targets.push({
      name: `all ${INSTANCES} running again after a SIGKILL restart`,
      goal: `≤ ${TARGET_SECONDS} s`,
      actual: `${fmt(runningMs / 1000)} s`,
      met:
        runningMs <= TARGET_SECONDS * 1000 && orphans === 0 && failures.length === 0 && cleanExit,
    });
  },
};
