// Log ingest: 100 children write stderr lines as fast as their pipes take them
// for a bounded time; how many lines per second land in mcp_logs, how late,
// and how many the agent dropped (per-child rate limit, queue bound) and said so.
// The agent stops reading a child while its log queue is full, so a flood is
// slowed down to what the database takes rather than dropped.
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'slonik';
import { z } from 'zod';
import { makeUser } from '../test/support/fixtures.js';
import { createInstanceRow, type TestInstance } from '../test/support/instances.js';
import type { Benchmark } from './support/benchmark.js';
import { measureLogRowCost } from './support/log-row-cost.js';
import { MB, descendants, readMemory, startCpuWindow } from './support/proc.js';
import { DIST_ROOT, mapLimit, sleep, startAgentProcess } from './support/stack.js';
import { fmt, round } from './support/stats.js';
import { registerCommandType } from './support/types.js';

const CHILDREN = Number(process.env.BENCH_LOG_CHILDREN ?? 100);
const FLOOD_MS = Number(process.env.BENCH_LOG_FLOOD_MS ?? 10_000);
const DRAIN_BUDGET_MS = Number(process.env.BENCH_LOG_DRAIN_MS ?? 45_000);
/** The children are told to stop early if the agent's memory grows past this. */
const AGENT_RSS_LIMIT = 1_024 * MB;
const FIXTURE = path.join(DIST_ROOT, 'bench/fixtures/stderr-flood-server.js');

const Count = z.object({ n: z.number() });

export const logIngestBenchmark: Benchmark = {
  name: 'log-ingest',
  title: `Log ingest (${CHILDREN} children flooding stderr)`,
  async run(ctx, report) {
    report.method.push(
      `${CHILDREN} instances of a fixture MCP server (\`bench/fixtures/stderr-flood-server.ts\`: answers initialize, ` +
        `then writes ~100-byte lines to stderr, 200 per write, as fast as the pipe takes them) on one agent process, ` +
        `all released at once for ${FLOOD_MS / 1000} s.`,
      'Each line carries its write time; lag = `mcp_logs.created_at` (the start of the INSERT that stored it) − write time. ' +
        'It includes the time a line waits in its child (blocked on a full pipe) while the agent holds that child back.',
      "Backpressure: while the agent's log queue is full it stops reading the children's stderr, so they block on " +
        'their writes and write only as fast as the database stores; the queue bound then drops nothing. ' +
        'Lines written = lines the children could write; sustained rate = flood lines whose INSERT started within the ' +
        'flood window ÷ its length, i.e. the rate at which lines landed during the flood.',
      'The agent keeps at most 5,000 lines/s per child (burst 10,000) and records how many it dropped beyond that.',
      "Then, on a database of its own: PostgreSQL's CPU per row for the agent's INSERT statement (the backend's " +
        'CPU time from /proc over 200,000 rows), on mcp_logs as the schema document writes it (primary key, foreign ' +
        'key to mcp_instances, three more indexes, monthly partitions), then without the foreign key, then with the ' +
        "primary key only. The first is the most lines/s this machine's cores can store, before the agent and the " +
        'children take their share.',
    );
    const db = await ctx.database();
    await registerCommandType(db.owner, 'flood', process.execPath, [FIXTURE]);
    const user = await makeUser(db.owner);
    const scratch = await ctx.scratchDir('log-ingest');
    const goFile = path.join(scratch, 'go');
    const stopFile = path.join(scratch, 'stop');
    const agent = await startAgentProcess(ctx, {
      databaseUrl: db.agentUrl,
      portCount: CHILDREN,
      // Its log queue is reported in each heartbeat: how the drain is watched.
      env: { MINIMCP_HEARTBEAT_SECONDS: '1' },
    });

    const rows: TestInstance[] = [];
    for (let index = 0; index < CHILDREN; index++)
      rows.push(
        await createInstanceRow(db.owner, {
          userId: user.id,
          type: 'flood',
          config: { goFile, stopFile, countDir: scratch, durationMs: FLOOD_MS, index },
        }),
      );
    ctx.log(`log-ingest: starting ${CHILDREN} children`);
    await mapLimit(rows, 8, (row) =>
      agent.grpc.startInstance({ instanceId: row.id }, { deadlineMs: 60_000 }),
    );
    const running = (await agent.grpc.health()).instancesRunning;
    if (running !== CHILDREN) throw new Error(`only ${running} of ${CHILDREN} flood instances run`);
    await sleep(1_000);

    ctx.log(`log-ingest: flooding for ${FLOOD_MS / 1000} s`);
    // The database's side of the work: the backends serving this database (the
    // agent's pool has opened its connections by now, during the 100 starts).
    const backends = await db.owner.any(sql.type(z.object({ pid: z.number() }))`
      SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()`);
    const goAt = Date.now();
    const cpu = startCpuWindow([agent.pid]);
    const databaseCpu = startCpuWindow(backends.map((b) => b.pid));
    const childrenCpu = startCpuWindow(descendants(agent.pid));
    await writeFile(goFile, '');
    let peakRss = 0;
    let stoppedEarly = false;
    while (Date.now() < goAt + FLOOD_MS) {
      await sleep(250);
      const rss = readMemory(agent.pid)?.rss ?? 0;
      peakRss = Math.max(peakRss, rss);
      if (rss > AGENT_RSS_LIMIT && !stoppedEarly) {
        stoppedEarly = true;
        await writeFile(stopFile, '');
      }
    }
    const floodCpu = cpu.end();
    const floodDatabaseCpu = databaseCpu.end();
    const floodChildrenCpu = childrenCpu.end();

    ctx.log('log-ingest: waiting for the agent to drain');
    const drainCpu = startCpuWindow([agent.pid]);
    // The agent reports its log queue in each heartbeat (every second here):
    // drained once a heartbeat sent after the flood says nothing is queued.
    const floodEnd = new Date();
    const Shipper = z.object({ queued: z.number().nullable(), fresh: z.boolean() });
    const drainDeadline = Date.now() + DRAIN_BUDGET_MS;
    let drained = false;
    while (Date.now() < drainDeadline) {
      await sleep(1_000);
      peakRss = Math.max(peakRss, readMemory(agent.pid)?.rss ?? 0);
      const shipper = await db.owner.one(sql.type(Shipper)`
        SELECT (stats -> 'log_shipper' ->> 'queued')::float8 AS queued,
               last_heartbeat > ${sql.timestamp(floodEnd)} AS fresh
        FROM nodes WHERE id = ${agent.nodeId}`);
      if (shipper.fresh && shipper.queued === 0) {
        drained = true;
        break;
      }
    }
    const drainSeconds = drainCpu.end().wallSeconds;
    // What is still queued in the agent is not waited for: stop it now.
    await agent.stop(drained ? 30_000 : 2_000);
    const counts = await Promise.all(
      rows.map((_, index) =>
        readFile(path.join(scratch, `written-${index}`), 'utf8').then(Number, () => Number.NaN),
      ),
    );
    const reported = counts.filter((n) => Number.isFinite(n));
    const written = reported.reduce((sum, n) => sum + n, 0);

    const window = { from: new Date(goAt), to: new Date(goAt + FLOOD_MS) };
    const Stats = z.object({
      landed: z.number(),
      in_window: z.number(),
      inserts_in_window: z.number(),
      last_ms: z.number().nullable(),
      lag_p50: z.number().nullable(),
      lag_p99: z.number().nullable(),
      lag_max: z.number().nullable(),
    });
    const stats = await db.owner.one(sql.type(Stats)`
      WITH flood AS (
        SELECT created_at,
               extract(epoch FROM created_at) * 1000 - split_part(message, ' ', 4)::float8 AS lag_ms
        FROM mcp_logs WHERE source = 'process' AND message LIKE 'flood %'
      )
      SELECT count(*)::float8 AS landed,
             (count(*) FILTER (WHERE created_at >= ${sql.timestamp(window.from)}
                                 AND created_at < ${sql.timestamp(window.to)}))::float8 AS in_window,
             (count(DISTINCT created_at) FILTER (WHERE created_at >= ${sql.timestamp(window.from)}
                                 AND created_at < ${sql.timestamp(window.to)}))::float8 AS inserts_in_window,
             extract(epoch FROM max(created_at))::float8 * 1000 AS last_ms,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms) AS lag_p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms) AS lag_p99,
             max(lag_ms) AS lag_max
      FROM flood`);
    const dropped = await db.owner.oneFirst(sql.type(Count)`
      SELECT coalesce(sum(substring(message FROM '^dropped (\\d+) lines')::float8), 0) AS n
      FROM mcp_logs WHERE source = 'system' AND message ~ '^dropped \\d+ lines of MCP server output'`);
    // The shipper's own bound on its queue: what it could not keep, reported per instance.
    const overflow = await db.owner.oneFirst(sql.type(Count)`
      SELECT coalesce(sum((metadata ->> 'dropped_lines')::float8), 0) AS n
      FROM mcp_logs WHERE source = 'system' AND metadata ? 'dropped_lines'`);
    const perSecond = await db.owner.any(sql.type(Count)`
      SELECT count(*)::float8 AS n FROM mcp_logs
      WHERE source = 'process' AND message LIKE 'flood %'
        AND created_at >= ${sql.timestamp(window.from)} AND created_at < ${sql.timestamp(window.to)}
      GROUP BY date_trunc('second', created_at) ORDER BY date_trunc('second', created_at)`);

    const sustained = stats.in_window / (FLOOD_MS / 1000);
    const overallSeconds = stats.last_ms === null ? Number.NaN : (stats.last_ms - goAt) / 1000;
    const overall = stats.landed / overallSeconds;
    // Inner seconds only: the first and last are partial.
    const fullSeconds = perSecond.slice(1, -1).map((row) => row.n);
    const unaccounted = written - stats.landed - dropped - overflow;

    report.tables.push({
      columns: ['figure', 'value'],
      rows: [
        [
          'lines written by the children',
          fmt(written, 0) +
            (reported.length < CHILDREN ? ` (${reported.length}/${CHILDREN} reported)` : ''),
        ],
        ['dropped by the per-child rate limit, as logged', fmt(dropped, 0)],
        ["dropped by the log queue's bound, as logged", fmt(overflow, 0)],
        ['landed in mcp_logs', fmt(stats.landed, 0)],
        [
          'unaccounted when the agent was stopped (written − landed − dropped): rate-limit drops not reported yet, or queued',
          fmt(unaccounted, 0),
        ],
        [`sustained: landed during the ${FLOOD_MS / 1000} s flood`, `${fmt(sustained, 0)} lines/s`],
        ['INSERT statements that started during the flood', fmt(stats.inserts_in_window, 0)],
        [
          'landed per full second (min – max)',
          fullSeconds.length
            ? `${fmt(Math.min(...fullSeconds), 0)} – ${fmt(Math.max(...fullSeconds), 0)}`
            : 'n/a',
        ],
        [
          'overall: landed ÷ (last INSERT − start)',
          `${fmt(overall, 0)} lines/s over ${fmt(overallSeconds, 1)} s`,
        ],
        [
          'lag p50 / p99 / max',
          `${fmt((stats.lag_p50 ?? NaN) / 1000, 2)} / ${fmt((stats.lag_p99 ?? NaN) / 1000, 2)} / ${fmt((stats.lag_max ?? NaN) / 1000, 2)} s`,
        ],
        ['agent CPU during the flood (100 = one core)', `${fmt(floodCpu.percent, 0)} %`],
        [
          `PostgreSQL CPU during the flood (its ${backends.length} backends for this database)`,
          `${fmt(floodDatabaseCpu.percent, 0)} %`,
        ],
        [
          `the ${CHILDREN} children's CPU during the flood (writing their lines)`,
          `${fmt(floodChildrenCpu.percent, 0)} %`,
        ],
        [
          'agent peak RSS',
          `${fmt(peakRss / MB, 0)} MB${stoppedEarly ? ' (flood stopped early: over the limit)' : ''}`,
        ],
        [
          'drain after the flood',
          `${fmt(drainSeconds, 1)} s${drained ? '' : ' (budget over, agent stopped with lines queued)'}`,
        ],
      ],
    });
    Object.assign(report.figures, {
      children: CHILDREN,
      flood_seconds: FLOOD_MS / 1000,
      lines_written: written,
      lines_dropped_rate_limit: dropped,
      lines_dropped_queue_full: overflow,
      lines_landed: stats.landed,
      lines_unaccounted_at_stop: unaccounted,
      sustained_lines_per_s: round(sustained, 0),
      inserts_during_flood: stats.inserts_in_window,
      overall_lines_per_s: round(overall, 0),
      min_full_second_lines: fullSeconds.length ? Math.min(...fullSeconds) : null,
      lag_p50_ms: stats.lag_p50 === null ? null : round(stats.lag_p50, 1),
      lag_p99_ms: stats.lag_p99 === null ? null : round(stats.lag_p99, 1),
      lag_max_ms: stats.lag_max === null ? null : round(stats.lag_max, 1),
      agent_cpu_percent_flood: round(floodCpu.percent, 1),
      postgres_cpu_percent_flood: round(floodDatabaseCpu.percent, 1),
      children_cpu_percent_flood: round(floodChildrenCpu.percent, 1),
      agent_peak_rss_mb: round(peakRss / MB, 0),
      drain_seconds: round(drainSeconds, 1),
      drained,
      stopped_early: stoppedEarly,
    });
    // The ceiling the schema sets on this machine, measured on a database of its own.
    const rowCosts = await measureLogRowCost(ctx);
    const cores = os.cpus().length;
    report.tables.push({
      columns: [
        "PostgreSQL's CPU per mcp_logs row (the agent's INSERT, 10,000-row batches, one connection)",
        'µs per row',
        'rows/s per core',
        `rows/s if PostgreSQL had all ${cores} cores`,
      ],
      rows: rowCosts.map((cost) => [
        cost.variant,
        fmt(cost.microsPerRow, 1),
        fmt(1e6 / cost.microsPerRow, 0),
        fmt((cores * 1e6) / cost.microsPerRow, 0),
      ]),
    });
    for (const cost of rowCosts)
      report.figures[`row_cost_us.${cost.key}`] = round(cost.microsPerRow, 2);
    report.targets.push({
      name: 'lines/s landing in mcp_logs (sustained)',
      goal: '≥ 100,000',
      actual: fmt(sustained, 0),
      met: sustained >= 100_000,
    });
  },
};
