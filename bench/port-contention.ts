// Port contention: 120 concurrent POST /v1/instances (120 users, one each)
// against the only node, which has 100 ports. Exactly 100 must succeed and 20
// get a clean 503, with no port handed out twice; and how long they wait.
import { sql } from 'slonik';
import { z } from 'zod';
import type { Benchmark } from './support/benchmark.js';
import { createApiUsers, startApiProcess, startFakeNode } from './support/api-stack.js';
import { fmt, round, summarize } from './support/stats.js';

const PORTS = 100;
const CREATES = 120;
const ROUNDS = 3;

interface Outcome {
  status: number;
  problemType: string | undefined;
  ms: number;
}

export const portContentionBenchmark: Benchmark = {
  name: 'port-contention',
  title: `Port contention (${CREATES} concurrent creates, ${PORTS} ports)`,
  async run(ctx, report) {
    report.method.push(
      `${CREATES} users each send one \`POST /v1/instances\` (type demo) at the same moment to the local API server ` +
        '(its own process, default settings: 10 database connections, the RLS-bound API role).',
      `The only active node has ${PORTS} ports; its agent is the test suite's fake (gRPC with mutual TLS, answers ` +
        "StartInstance with running at once), so the figures are the API's and the database's, not a child's start.",
      `${ROUNDS} rounds, each on a fresh node. Latency is the client's, from sending to the full answer.`,
    );
    const db = await ctx.database();
    const api = await startApiProcess(ctx, db);
    const users = await createApiUsers(db, CREATES);
    const post = async (token: string): Promise<Outcome> => {
      const t0 = performance.now();
      const response = await fetch(`${api.url}/v1/instances`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'demo', duration_minutes: 30 }),
      });
      const body = (await response.json().catch(() => ({}))) as { type?: string };
      return {
        status: response.status,
        problemType: response.status >= 400 ? body.type : undefined,
        ms: performance.now() - t0,
      };
    };

    const rows: string[][] = [];
    const all: Outcome[] = [];
    let allClean = true;
    for (let pass = 1; pass <= ROUNDS; pass++) {
      const { node } = await startFakeNode(ctx, db, PORTS);
      // One request first, so the API has its connections and agent channel warm.
      await fetch(`${api.url}/v1/instances`, {
        headers: { authorization: `Bearer ${users[0]!.token}` },
      });
      ctx.log(`port-contention: round ${pass}/${ROUNDS}`);
      const outcomes = await Promise.all(users.map((user) => post(user.token)));
      all.push(...outcomes);
      const created = outcomes.filter((o) => o.status === 201 || o.status === 202).length;
      const refused = outcomes.filter((o) => o.status === 503);
      const other = outcomes.filter(
        (o) => o.status !== 201 && o.status !== 202 && o.status !== 503,
      );
      const problemTypes = [...new Set(refused.map((o) => o.problemType?.split('/').pop() ?? '?'))];

      const Check = z.object({
        instances: z.number(),
        ports_taken: z.number(),
        distinct_ports: z.number(),
        matched: z.number(),
      });
      const check = await db.owner.one(sql.type(Check)`
        SELECT
          (SELECT count(*)::int FROM mcp_instances WHERE node_id = ${node.id}) AS instances,
          (SELECT count(*)::int FROM port_allocations WHERE node_id = ${node.id} AND NOT is_available) AS ports_taken,
          (SELECT count(DISTINCT assigned_port)::int FROM mcp_instances WHERE node_id = ${node.id}) AS distinct_ports,
          (SELECT count(*)::int FROM port_allocations pa JOIN mcp_instances i
             ON i.id = pa.mcp_instance_id AND i.assigned_port = pa.port AND i.node_id = pa.node_id
           WHERE pa.node_id = ${node.id} AND NOT pa.is_available) AS matched`);
      const doubleBooked = check.instances - check.distinct_ports;
      const clean =
        created === PORTS &&
        refused.length === CREATES - PORTS &&
        other.length === 0 &&
        check.instances === PORTS &&
        doubleBooked === 0 &&
        check.matched === PORTS;
      allClean &&= clean;
      const latency = summarize(outcomes.map((o) => o.ms));
      rows.push([
        String(pass),
        String(created),
        `${refused.length} (${problemTypes.join(', ') || '—'})`,
        String(
          other.length
            ? `${other.length}: ${[...new Set(other.map((o) => o.status))].join(', ')}`
            : 0,
        ),
        `${check.instances} / ${check.ports_taken}`,
        String(doubleBooked),
        fmt(latency.p50, 0),
        fmt(latency.p95, 0),
        fmt(latency.max, 0),
      ]);
      report.figures[`round${pass}.created`] = created;
      report.figures[`round${pass}.refused_503`] = refused.length;
      report.figures[`round${pass}.other`] = other.length;
      report.figures[`round${pass}.double_booked`] = doubleBooked;
      report.figures[`round${pass}.p95_ms`] = round(latency.p95, 1);
    }
    report.tables.push({
      columns: [
        'round',
        '201/202',
        '503 (problem type)',
        'other',
        'rows / ports taken',
        'double-booked',
        'p50 ms',
        'p95 ms',
        'max ms',
      ],
      rows,
    });
    const ok = summarize(all.filter((o) => o.status < 300).map((o) => o.ms));
    const refusedLatency = summarize(all.filter((o) => o.status === 503).map((o) => o.ms));
    const overall = summarize(all.map((o) => o.ms));
    report.tables.push({
      columns: ['answers', 'count', 'p50 ms', 'p95 ms', 'max ms'],
      rows: [
        ['created', String(ok.count), fmt(ok.p50, 0), fmt(ok.p95, 0), fmt(ok.max, 0)],
        [
          'refused (503)',
          String(refusedLatency.count),
          fmt(refusedLatency.p50, 0),
          fmt(refusedLatency.p95, 0),
          fmt(refusedLatency.max, 0),
        ],
        [
          'all',
          String(overall.count),
          fmt(overall.p50, 0),
          fmt(overall.p95, 0),
          fmt(overall.max, 0),
        ],
      ],
    });
    Object.assign(report.figures, {
      p50_ms: round(overall.p50, 1),
      p95_ms: round(overall.p95, 1),
      created_p95_ms: round(ok.p95, 1),
      refused_p95_ms: round(refusedLatency.p95, 1),
      all_rounds_exact: allClean,
    });
    report.targets.push({
      name: `every round: exactly ${PORTS} created, ${CREATES - PORTS} × 503, no port double-booked`,
      goal: 'yes',
      actual: allClean ? 'yes' : 'no',
      met: allClean,
    });
  },
};
