// Density: 100 `demo` instances on one agent. The agent's resident memory and
// idle CPU (from /proc, outside the agent), before and after, and what each
// instance costs the agent beyond its own child process.
import { makeUser } from '../test/support/fixtures.js';
import { createInstanceRow, type TestInstance } from '../test/support/instances.js';
import type { Benchmark } from './support/benchmark.js';
import { descendants, MB, readMemory, startCpuWindow, type CpuWindow } from './support/proc.js';
import { mapLimit, sleep, startAgentProcess } from './support/stack.js';
import { fmt, median, round } from './support/stats.js';

const INSTANCES = Number(process.env.BENCH_DENSITY_INSTANCES ?? 100);
/** Starts at once, as the reconciler does after a restart. */
const START_CONCURRENCY = 8;
const START_BUDGET_MS = 240_000;
const SETTLE_MS = 5_000;
const IDLE_WINDOW_MS = 10_000;
const RSS_SAMPLE_MS = 500;

interface IdleSample {
  agentRss: number;
  agentRssAnon: number;
  agentCpu: CpuWindow;
  children: number;
  childrenRss: number;
  childrenCpu: CpuWindow;
}

async function sampleIdle(agentPid: number, windowMs: number): Promise<IdleSample> {
  const children = descendants(agentPid);
  const agentWindow = startCpuWindow([agentPid]);
  const childrenWindow = startCpuWindow(children);
  // The median of samples across the window: one reading can land just before a GC.
  const rss: number[] = [];
  const anon: number[] = [];
  for (let elapsed = 0; elapsed < windowMs; elapsed += RSS_SAMPLE_MS) {
    await sleep(RSS_SAMPLE_MS);
    const memory = readMemory(agentPid);
    if (memory === undefined) throw new Error('the agent exited during the idle window');
    rss.push(memory.rss);
    anon.push(memory.rssAnon);
  }
  return {
    agentRss: median(rss),
    agentRssAnon: median(anon),
    agentCpu: agentWindow.end(),
    children: children.length,
    childrenRss: children.reduce((sum, pid) => sum + (readMemory(pid)?.rss ?? 0), 0),
    childrenCpu: childrenWindow.end(),
  };
}

export const densityBenchmark: Benchmark = {
  name: 'density',
  title: `Density (${INSTANCES} demo instances on one agent)`,
  async run(ctx, report) {
    report.method.push(
      `One agent process (the agent bundle the nodes install, \`infra/agent-bundle\`, default settings: heartbeat 5 s, reconcile 3 s, usage 5 s) with a ${INSTANCES}-port pool.`,
      `${INSTANCES} \`demo\` instances written the way the API writes them, started with gRPC StartInstance, ${START_CONCURRENCY} at a time.`,
      `Idle figures after ${SETTLE_MS / 1000} s of settling, over ${IDLE_WINDOW_MS / 1000} s, from /proc: the agent's VmRSS (median of samples every 500 ms) and CPU time; the children's summed VmRSS and CPU.`,
      'Memory per instance added to the agent = (agent RSS with the instances − agent RSS with none) ÷ instances.',
    );
    const db = await ctx.database();
    const user = await makeUser(db.owner);
    const agent = await startAgentProcess(ctx, { databaseUrl: db.agentUrl, portCount: INSTANCES });

    ctx.log('density: measuring the idle agent with no instance');
    await sleep(SETTLE_MS);
    const empty = await sampleIdle(agent.pid, IDLE_WINDOW_MS);

    const rows: TestInstance[] = [];
    for (let i = 0; i < INSTANCES; i++)
      rows.push(await createInstanceRow(db.owner, { userId: user.id }));
    ctx.log(`density: starting ${INSTANCES} instances`);
    const startedAt = performance.now();
    const deadline = Date.now() + START_BUDGET_MS;
    const failures: string[] = [];
    await mapLimit(rows, START_CONCURRENCY, async (row) => {
      const left = deadline - Date.now();
      if (left <= 0) {
        failures.push('start budget exhausted');
        return;
      }
      try {
        const answer = await agent.grpc.startInstance({ instanceId: row.id }, { deadlineMs: left });
        if (answer.instance.status !== 'running')
          failures.push(answer.instance.error?.message ?? answer.instance.status);
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
    });
    const startSeconds = (performance.now() - startedAt) / 1000;
    const health = await agent.grpc.health();
    const running = health.instancesRunning;
    ctx.log(`density: ${running} running after ${startSeconds.toFixed(1)} s; settling`);
    if (failures.length > 0)
      report.notes.push(`${failures.length} start(s) failed, e.g. ${failures[0]}`);

    await sleep(SETTLE_MS);
    const full = await sampleIdle(agent.pid, IDLE_WINDOW_MS);
    const perInstance = running > 0 ? (full.agentRss - empty.agentRss) / running : Number.NaN;
    const perChild = full.children > 0 ? full.childrenRss / full.children : Number.NaN;

    const stopped = await agent.stop(60_000);

    report.tables.push({
      columns: [
        'state',
        'instances',
        'agent RSS MB',
        'agent anon MB',
        'agent CPU %',
        'children',
        'children RSS MB',
        'children CPU %',
      ],
      rows: [
        [
          'idle, no instance',
          '0',
          fmt(empty.agentRss / MB, 1),
          fmt(empty.agentRssAnon / MB, 1),
          fmt(empty.agentCpu.percent),
          '0',
          '0',
          '0',
        ],
        [
          `idle, ${INSTANCES} instances`,
          String(running),
          fmt(full.agentRss / MB, 1),
          fmt(full.agentRssAnon / MB, 1),
          fmt(full.agentCpu.percent),
          String(full.children),
          fmt(full.childrenRss / MB, 0),
          fmt(full.childrenCpu.percent),
        ],
      ],
    });
    report.tables.push({
      columns: ['figure', 'value'],
      rows: [
        ['agent memory added per instance', `${fmt(perInstance / 1024, 0)} KB`],
        ['child RSS per instance (the demo server itself)', `${fmt(perChild / MB, 1)} MB`],
        [
          `time to start ${INSTANCES} (${START_CONCURRENCY} at a time)`,
          `${fmt(startSeconds, 1)} s`,
        ],
        [
          `agent SIGTERM → exit with ${running} children`,
          `${fmt(stopped.stopMs / 1000, 1)} s${stopped.cleanExit ? '' : ' (not clean)'}`,
        ],
      ],
    });
    Object.assign(report.figures, {
      instances_running: running,
      start_seconds: round(startSeconds, 2),
      'empty.agent_rss_mb': round(empty.agentRss / MB, 1),
      'empty.agent_cpu_percent': round(empty.agentCpu.percent, 2),
      'full.agent_rss_mb': round(full.agentRss / MB, 1),
      'full.agent_rss_anon_mb': round(full.agentRssAnon / MB, 1),
      'full.agent_cpu_percent': round(full.agentCpu.percent, 2),
      'full.children': full.children,
      'full.children_rss_mb': round(full.childrenRss / MB, 0),
      'full.children_cpu_percent': round(full.childrenCpu.percent, 2),
      agent_kb_per_instance: round(perInstance / 1024, 0),
      child_rss_mb_per_instance: round(perChild / MB, 1),
      stop_seconds: round(stopped.stopMs / 1000, 2),
      stop_clean: stopped.cleanExit,
    });
    report.targets.push(
      {
        name: `agent RSS with ${INSTANCES} instances`,
        goal: '≤ 80 MB',
        actual: `${fmt(full.agentRss / MB, 1)} MB`,
        met: running === INSTANCES && full.agentRss <= 80 * MB,
      },
      {
        name: `agent idle CPU with ${INSTANCES} instances`,
        goal: '≤ 2 %',
        actual: `${fmt(full.agentCpu.percent)} %`,
        met: running === INSTANCES && full.agentCpu.percent <= 2,
      },
    );
  },
};
