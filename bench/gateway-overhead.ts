// Gateway overhead: server-everything's `echo` tool called directly over
// stdio, through a MiniMCP instance (a real agent process, bearer token and
// Origin checked, access log on) and through supergateway (stateful Streamable
// HTTP), with the same SDK client, interleaved in rounds on one machine.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { findFreePort } from '../infra/local/postgres-server.js';
import { makeUser } from '../test/support/fixtures.js';
import { createInstanceRow } from '../test/support/instances.js';
import { portOpen, waitFor } from '../test/support/wait.js';
import type { Benchmark } from './support/benchmark.js';
import { connectHttpClient, mergeLoad, runLoad, type LoadResult } from './support/mcp-load.js';
import { cpuSeconds, descendants } from './support/proc.js';
import { REPO_ROOT, startAgentProcess, type BenchContext } from './support/stack.js';
import { fmt, median, round, summarize } from './support/stats.js';
import { registerCommandType } from './support/types.js';

const EVERYTHING = path.join(
  REPO_ROOT,
  'node_modules/@modelcontextprotocol/server-everything/dist/index.js',
);
const SUPERGATEWAY = path.join(REPO_ROOT, 'node_modules/supergateway/dist/index.js');

const ROUNDS = 5;
const SEGMENT_MS = 1_000;
const WARMUP_CALLS = 200;
const CONCURRENCIES = [1, 8] as const;

type Way = 'direct' | 'minimcp' | 'supergateway';
const LABEL: Record<Way, string> = {
  direct: 'direct stdio',
  minimcp: 'MiniMCP',
  supergateway: 'supergateway',
};

/** supergateway in stateful Streamable HTTP mode, its own process group, quiet. */
async function startSupergateway(ctx: BenchContext): Promise<{ url: string; pid: number }> {
  const port = await findFreePort();
  const child = spawn(
    process.execPath,
    [
      SUPERGATEWAY,
      '--stdio',
      `${process.execPath} ${EVERYTHING} stdio`,
      '--outputTransport',
      'streamableHttp',
      '--stateful',
      '--port',
      String(port),
      // Its default (info) prints every message it relays; none is its best case.
      '--logLevel',
      'none',
    ],
    { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
  );
  const pid = child.pid!;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  ctx.cleanup.defer('stop supergateway', async () => {
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal);
      } catch {
        // The group is gone already.
      }
    };
    signalGroup('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
    signalGroup('SIGKILL');
  });
  await waitFor('supergateway to listen', () => portOpen(port), 30_000);
  return { url: `http://127.0.0.1:${port}/mcp`, pid };
}

export const gatewayBenchmark: Benchmark = {
  name: 'gateway',
  title: 'Gateway overhead (server-everything echo)',
  async run(ctx, report) {
    report.method.push(
      `Tool: server-everything's \`echo\` (${'{message: "hello"}'}), official SDK client ${'(`Client`)'}; ` +
        'stdio transport for the direct path, `StreamableHTTPClientTransport` for both gateways, its requests sent by ' +
        "node:http with keep-alive (the transport's `fetch` option; Node 20's built-in fetch cost the client more CPU per call than the MiniMCP gateway).",
      'MiniMCP: a real agent process (the agent bundle the nodes install, `infra/agent-bundle`, default settings, access log on) serving an ' +
        'instance of a type registered as `node …/server-everything/dist/index.js stdio`; every request carries ' +
        '`Authorization: Bearer <token>` and `Origin: http://localhost` (both checked).',
      'supergateway 4.0.0: `--outputTransport streamableHttp --stateful --logLevel none` (its quietest).',
      `Concurrency 8 = one client (one MCP session) with 8 calls in flight, so each gateway bridges one child. ` +
        `${ROUNDS} interleaved rounds of ${SEGMENT_MS} ms per path and concurrency (the two gateways alternate which goes first), after ${WARMUP_CALLS} warm-up calls; ` +
        'the targets compare the two gateways round by round (median of the per-round ratios).',
      'CPU per call, from /proc over each segment: the client (the benchmark process), the gateway process (agent / ' +
        'supergateway) and the server process behind it. CPU ceiling = cores ÷ their sum: the calls/s this path could reach ' +
        'if nothing else ran on the machine.',
    );

    const db = await ctx.database();
    await registerCommandType(db.owner, 'everything', process.execPath, [EVERYTHING, 'stdio']);
    const user = await makeUser(db.owner);
    ctx.log('gateway: starting the agent and supergateway');
    const agent = await startAgentProcess(ctx, { databaseUrl: db.agentUrl, portCount: 4 });
    const instance = await createInstanceRow(db.owner, { userId: user.id, type: 'everything' });
    await agent.grpc.startInstance({ instanceId: instance.id });
    const supergateway = await startSupergateway(ctx);

    const headers = { Origin: 'http://localhost' };
    const clients = new Map<Way, Client>();
    const direct = new Client({ name: 'minimcp-bench', version: '1.0.0' });
    ctx.cleanup.defer('close the direct client', () => direct.close());
    const directTransport = new StdioClientTransport({
      command: process.execPath,
      args: [EVERYTHING, 'stdio'],
      stderr: 'ignore',
    });
    await direct.connect(directTransport);
    clients.set('direct', direct);
    const viaMiniMcp = await connectHttpClient(instance.url, {
      ...headers,
      Authorization: `Bearer ${instance.token}`,
    });
    ctx.cleanup.defer('close the MiniMCP client', () => viaMiniMcp.close());
    clients.set('minimcp', viaMiniMcp);
    // The same headers (the token is ignored there), so both gateways parse the same request.
    const viaSupergateway = await connectHttpClient(supergateway.url, {
      ...headers,
      Authorization: `Bearer ${instance.token}`,
    });
    ctx.cleanup.defer('close the supergateway client', () => viaSupergateway.close());
    clients.set('supergateway', viaSupergateway);

    // Where each call's CPU goes: the client (this process), the gateway, the server process.
    const pids: Record<Way, { gateway: number[]; server: number[] }> = {
      direct: { gateway: [], server: [directTransport.pid!] },
      minimcp: { gateway: [agent.pid], server: descendants(agent.pid) },
      supergateway: { gateway: [supergateway.pid], server: descendants(supergateway.pid) },
    };
    const ways: Way[] = ['direct', 'minimcp', 'supergateway'];
    const callOf = (way: Way) => {
      const client = clients.get(way)!;
      return () => client.callTool({ name: 'echo', arguments: { message: 'hello' } });
    };
    // A wrong answer would make every figure meaningless: check one first.
    for (const way of ways) {
      const answer = JSON.stringify(await callOf(way)());
      if (!answer.includes('hello'))
        throw new Error(`${LABEL[way]}: unexpected echo answer ${answer}`);
    }

    ctx.log('gateway: warming up');
    for (const way of ways)
      for (const concurrency of CONCURRENCIES)
        await runLoad(callOf(way), { concurrency, maxCalls: WARMUP_CALLS, maxMs: 3_000 });

    const runs = new Map<string, LoadResult[]>();
    const cpu = new Map<string, { client: number; gateway: number; server: number }>();
    const cpuOf = (list: readonly number[]) =>
      list.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
    for (let pass = 1; pass <= ROUNDS; pass++) {
      ctx.log(`gateway: round ${pass}/${ROUNDS}`);
      // The two gateways take turns going first, so neither always runs right
      // after the direct path or in the same slot of a periodic disturbance.
      const order: Way[] = pass % 2 === 1 ? ways : ['direct', 'supergateway', 'minimcp'];
      for (const way of order)
        for (const concurrency of CONCURRENCIES) {
          const key = `${way}/${concurrency}`;
          const before = {
            client: cpuOf([process.pid]),
            gateway: cpuOf(pids[way].gateway),
            server: cpuOf(pids[way].server),
          };
          const result = await runLoad(callOf(way), {
            concurrency,
            maxCalls: 100_000,
            maxMs: SEGMENT_MS,
          });
          const sum = cpu.get(key) ?? { client: 0, gateway: 0, server: 0 };
          cpu.set(key, {
            client: sum.client + cpuOf([process.pid]) - before.client,
            gateway: sum.gateway + cpuOf(pids[way].gateway) - before.gateway,
            server: sum.server + cpuOf(pids[way].server) - before.server,
          });
          runs.set(key, [...(runs.get(key) ?? []), result]);
        }
    }

    const rows: string[][] = [];
    const stats = new Map<string, { p50: number; p99: number; rate: number; gatewayUs: number }>();
    for (const way of ways)
      for (const concurrency of CONCURRENCIES) {
        const key = `${way}/${concurrency}`;
        const merged = mergeLoad(runs.get(key)!);
        const latency = summarize(merged.latenciesMs);
        const rate = (merged.calls / merged.elapsedMs) * 1000;
        const used = cpu.get(key)!;
        const perCall = (seconds: number) => (seconds / merged.calls) * 1e6;
        const totalUs = perCall(used.client + used.gateway + used.server);
        // If the machine's cores did nothing else: the most calls/s this CPU cost allows.
        const ceiling = (os.cpus().length * 1e6) / totalUs;
        stats.set(key, {
          p50: latency.p50,
          p99: latency.p99,
          rate,
          gatewayUs: perCall(used.gateway),
        });
        const prefix = `${way}.c${concurrency}`;
        report.figures[`${prefix}.p50_ms`] = round(latency.p50);
        report.figures[`${prefix}.p99_ms`] = round(latency.p99);
        report.figures[`${prefix}.calls_per_s`] = round(rate, 0);
        report.figures[`${prefix}.calls`] = merged.calls;
        report.figures[`${prefix}.errors`] = merged.errors;
        report.figures[`${prefix}.client_cpu_us_per_call`] = round(perCall(used.client), 0);
        report.figures[`${prefix}.gateway_cpu_us_per_call`] = round(perCall(used.gateway), 0);
        report.figures[`${prefix}.server_cpu_us_per_call`] = round(perCall(used.server), 0);
        rows.push([
          LABEL[way],
          String(concurrency),
          fmt(latency.p50, 3),
          fmt(latency.p99, 3),
          fmt(rate, 0),
          fmt(perCall(used.client), 0),
          way === 'direct' ? '—' : fmt(perCall(used.gateway), 0),
          fmt(perCall(used.server), 0),
          fmt(ceiling, 0),
          `${merged.calls}${merged.errors ? ` (${merged.errors} errors)` : ''}`,
        ]);
      }
    report.tables.push({
      columns: [
        'path',
        'concurrency',
        'p50 ms',
        'p99 ms',
        'calls/s',
        'client CPU µs/call',
        'gateway CPU µs/call',
        'server CPU µs/call',
        'CPU ceiling calls/s',
        'calls',
      ],
      rows,
    });

    // Ratios per round (the two gateways measured seconds apart), then their median:
    // steadier on a shared machine than a ratio of pooled figures.
    const perRound = (concurrency: number, field: 'p50' | 'rate') =>
      runs.get(`minimcp/${concurrency}`)!.map((mini, i) => {
        const sg = runs.get(`supergateway/${concurrency}`)![i]!;
        return field === 'rate'
          ? mini.calls / mini.elapsedMs / (sg.calls / sg.elapsedMs)
          : summarize(mini.latenciesMs).p50 / summarize(sg.latenciesMs).p50;
      });
    const spread = (values: number[]) =>
      `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;
    const pooled = (concurrency: number, field: 'p99') =>
      stats.get(`minimcp/${concurrency}`)![field] /
      stats.get(`supergateway/${concurrency}`)![field];
    const cpuRatio = (concurrency: number) =>
      stats.get(`minimcp/${concurrency}`)!.gatewayUs /
      stats.get(`supergateway/${concurrency}`)!.gatewayUs;
    report.tables.push({
      columns: ['MiniMCP ÷ supergateway', 'c=1', 'c=8'],
      rows: [
        ['p50, median of rounds (min–max)', spread(perRound(1, 'p50')), spread(perRound(8, 'p50'))],
        [
          'calls/s, median of rounds (min–max)',
          spread(perRound(1, 'rate')),
          spread(perRound(8, 'rate')),
        ],
        ['p99, all rounds', fmt(pooled(1, 'p99')), fmt(pooled(8, 'p99'))],
        ['gateway CPU per call, all rounds', fmt(cpuRatio(1)), fmt(cpuRatio(8))],
      ],
    });
    const p50Ratio = median(perRound(1, 'p50'));
    const rateRatio = median(perRound(8, 'rate'));
    report.figures['ratio.p50_c1'] = round(p50Ratio);
    report.figures['ratio.p50_c8'] = round(median(perRound(8, 'p50')));
    report.figures['ratio.calls_per_s_c1'] = round(median(perRound(1, 'rate')));
    report.figures['ratio.calls_per_s_c8'] = round(rateRatio);
    report.figures['ratio.calls_per_s_c8_min'] = round(Math.min(...perRound(8, 'rate')));
    report.figures['ratio.calls_per_s_c8_max'] = round(Math.max(...perRound(8, 'rate')));
    report.figures['ratio.gateway_cpu_per_call_c1'] = round(cpuRatio(1));
    report.figures['ratio.gateway_cpu_per_call_c8'] = round(cpuRatio(8));
    report.figures['minimcp.added_p50_ms_c1'] = round(
      stats.get('minimcp/1')!.p50 - stats.get('direct/1')!.p50,
    );
    report.figures['supergateway.added_p50_ms_c1'] = round(
      stats.get('supergateway/1')!.p50 - stats.get('direct/1')!.p50,
    );
    report.targets.push(
      {
        name: 'MiniMCP p50 ÷ supergateway p50 (c=1, median of rounds)',
        goal: '≤ 0.60',
        actual: fmt(p50Ratio),
        met: p50Ratio <= 0.6,
      },
      {
        name: 'MiniMCP calls/s ÷ supergateway calls/s (c=8, median of rounds)',
        goal: '≥ 2.00',
        actual: fmt(rateRatio),
        met: rateRatio >= 2,
      },
    );
  },
};
