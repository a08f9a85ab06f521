// Create → ready: from POST /v1/instances to the first tools/list answered
// through the instance's gateway, one create at a time, for `demo` and for
// `github` (its key stored first; its upstream a local fake, not contacted to
// start). The whole path is real: the API process, the agent process, the child.
// The agent keeps its default warm pool (MINIMCP_WARM_POOL) unless BENCH_WARM_POOL
// says otherwise (`0`: every create spawns its child); pool hits are counted.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ListToolsResultSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Benchmark, Report } from './support/benchmark.js';
import {
  createApiUsers,
  startApiProcess,
  type ApiProcess,
  type ApiUser,
} from './support/api-stack.js';
import { connectHttpClient } from './support/mcp-load.js';
import { DIST_ROOT, sleep, startAgentProcess, type BenchContext } from './support/stack.js';
import { fmt, round, summarize } from './support/stats.js';

const CREATES = Number(process.env.BENCH_CREATES ?? 50);
const WARMUP = 2;
const BARE = 10;
/** MINIMCP_WARM_POOL for the agent; unset: the agent's default. */
const WARM_POOL = process.env.BENCH_WARM_POOL;
/** Matches github's key pattern (40 hex digits, a classic token's form); never sent anywhere real. */
const FAKE_GITHUB_KEY = '0123456789abcdef'.repeat(3).slice(0, 40);
const SCRIPTS: Record<string, string> = {
  demo: 'mcp-servers/demo-mcp-server.js',
  github: 'mcp-servers/github-mcp-server.js',
};

interface Created {
  id: string;
  access_url: string;
  access_token: string;
  status: string;
}

interface Sample {
  id: string;
  postMs: number;
  readyMs: number;
  totalMs: number;
  status: number;
  /** The SDK client's own work after the answer (not in totalMs): see clientValidatorsMs. */
  validatorsMs: number;
}

/**
 * `tools/list` until its answer has arrived and passed the SDK's result schema.
 * The SDK's `listTools()` then also compiles an output validator (Ajv) per tool
 * that declares an outputSchema, in the client, before it returns: ~55–80 ms
 * for github's 13 tools here, whoever serves them. That is the client's
 * preparation for later calls, not the answer, so it is timed apart.
 */
async function toolsListAnswered(client: Client): Promise<Tool[]> {
  const { tools } = await client.request({ method: 'tools/list' }, ListToolsResultSchema);
  return tools;
}

/** What `listTools()` does after the answer: one compiled validator per output schema. */
function clientValidatorsMs(tools: readonly Tool[]): number {
  const t0 = performance.now();
  const validators = new AjvJsonSchemaValidator();
  for (const tool of tools) if (tool.outputSchema) validators.getValidator(tool.outputSchema);
  return performance.now() - t0;
}

async function createOnce(api: ApiProcess, user: ApiUser, type: string): Promise<Sample> {
  const t0 = performance.now();
  const response = await fetch(`${api.url}/v1/instances`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type, duration_minutes: 30 }),
  });
  const body = (await response.json()) as Created & { detail?: string };
  const t1 = performance.now();
  if (response.status !== 201 && response.status !== 202)
    throw new Error(
      `POST /v1/instances (${type}) answered ${response.status}: ${body.detail ?? JSON.stringify(body)}`,
    );
  // A 202 (pending) means the agent has not confirmed yet: the client retries until the port answers.
  const deadline = Date.now() + 30_000;
  let tools: Tool[];
  for (;;) {
    try {
      const client = await connectHttpClient(body.access_url, {
        Authorization: `Bearer ${body.access_token}`,
      });
      try {
        tools = await toolsListAnswered(client);
        if (tools.length === 0) throw new Error(`${type}: tools/list answered no tool`);
      } finally {
        await client.close();
      }
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const t2 = performance.now();
  const validatorsMs = clientValidatorsMs(tools);
  await fetch(`${api.url}/v1/instances/${body.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${user.token}` },
  });
  return {
    id: body.id,
    postMs: t1 - t0,
    readyMs: t2 - t1,
    totalMs: t2 - t0,
    status: response.status,
    validatorsMs,
  };
}

/** A stand-in for api.github.com: answers 404 to anything and counts what it was asked. */
async function startFakeGithub(
  ctx: BenchContext,
): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ctx.cleanup.defer(
    'stop the fake GitHub',
    () => new Promise<void>((resolve) => server.close(() => resolve())),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
  };
}

/** The same server spawned by hand with the SDK's stdio client: spawn → tools/list answered. */
async function bareChildMs(script: string, env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const client = new Client({ name: 'minimcp-bench', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [path.join(DIST_ROOT, script)],
      env: { PATH: process.env.PATH ?? '', ...env },
      stderr: 'ignore',
    }),
  );
  try {
    await toolsListAnswered(client);
    return performance.now() - t0;
  } finally {
    await client.close();
  }
}

function addRows(
  report: Report,
  type: string,
  samples: Sample[],
  handshakeMs: number[],
  bareMs: number[],
  poolHits: number,
): { p50: number; p95: number } {
  const handshake = summarize(handshakeMs);
  const bare = summarize(bareMs);
  const post = summarize(samples.map((s) => s.postMs));
  const ready = summarize(samples.map((s) => s.readyMs));
  const total = summarize(samples.map((s) => s.totalMs));
  const validators = summarize(samples.map((s) => s.validatorsMs));
  const pending = samples.filter((s) => s.status === 202).length;
  report.tables[0]!.rows.push([
    type,
    String(samples.length),
    `${fmt(post.p50, 0)} / ${fmt(post.p95, 0)}`,
    `${fmt(ready.p50, 0)} / ${fmt(ready.p95, 0)}`,
    `${fmt(total.p50, 0)} / ${fmt(total.p95, 0)}`,
    `${fmt(handshake.p50, 0)} / ${fmt(handshake.p95, 0)}`,
    `${fmt(bare.p50, 0)} / ${fmt(bare.p95, 0)}`,
    fmt(total.p50 - bare.p50, 0),
    fmt(validators.p50, 0),
    String(pending),
    `${poolHits} / ${samples.length}`,
  ]);
  Object.assign(report.figures, {
    [`${type}.creates`]: samples.length,
    [`${type}.post_p50_ms`]: round(post.p50, 1),
    [`${type}.post_p95_ms`]: round(post.p95, 1),
    [`${type}.connect_list_p50_ms`]: round(ready.p50, 1),
    [`${type}.total_p50_ms`]: round(total.p50, 1),
    [`${type}.total_p95_ms`]: round(total.p95, 1),
    [`${type}.answered_202`]: pending,
    [`${type}.agent_handshake_p50_ms`]: round(handshake.p50, 1),
    [`${type}.bare_child_p50_ms`]: round(bare.p50, 1),
    [`${type}.added_by_minimcp_p50_ms`]: round(total.p50 - bare.p50, 1),
    [`${type}.warm_pool_hits`]: poolHits,
    [`${type}.client_output_validators_p50_ms`]: round(validators.p50, 1),
  });
  return { p50: total.p50, p95: total.p95 };
}

export const createReadyBenchmark: Benchmark = {
  name: 'create-ready',
  title: `Create → ready (${CREATES} creates per type, one at a time)`,
  async run(ctx, report) {
    report.method.push(
      'The local API server and one agent process (both default settings) on one PostgreSQL; the agent spawns the real built-in server.',
      'Each sample: `POST /v1/instances` (201 once the agent reports the child ready, or 202 pending) → a new SDK client ' +
        "(Streamable HTTP) initializes through the gateway → `tools/list` answered (its result arrived and passed the SDK's schema). Then `DELETE` (not timed).",
      "Not counted, shown apart: what the SDK's `listTools()` does after the answer, in the client — compile an Ajv " +
        'validator per tool output schema (13 for github, whoever serves them). The bare child below is timed the same way.',
      `${WARMUP} warm-up creates per type are not counted. github: the key is stored first with \`PUT /v1/keys/github\`; ` +
        'its upstream is a local fake (starting the server must not contact it).',
      `Warm pool: ${WARM_POOL === undefined ? "the agent's default (MINIMCP_WARM_POOL unset)" : `MINIMCP_WARM_POOL=${WARM_POOL}`}; ` +
        'a pool hit is a create whose child was taken pre-spawned (its `spawned pid N (attempt 0, from the warm pool)` log line).',
      "For scale, in the same run: the agent's own spawn (or take) → initialize time per instance (its `ready in N ms` log line), " +
        `and the same server spawned by hand with the SDK's stdio client until tools/list answers (${BARE} times, between the creates).`,
    );
    report.tables.push({
      columns: [
        'type',
        'creates',
        'POST→201 ms p50 / p95',
        'connect + tools/list ms p50 / p95',
        'create → ready ms p50 / p95',
        "child spawn or take → initialize (agent's log) ms",
        'bare child spawn → tools/list ms',
        'added by MiniMCP (p50 − bare p50) ms',
        "client's output validators after the answer (not counted) ms p50",
        '202s',
        'warm pool hits',
      ],
      rows: [],
    });
    const db = await ctx.database();
    const github = await startFakeGithub(ctx);
    const agent = await startAgentProcess(ctx, {
      databaseUrl: db.agentUrl,
      portCount: 20,
      env: {
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: github.url }),
        ...(WARM_POOL === undefined ? {} : { MINIMCP_WARM_POOL: WARM_POOL }),
      },
    });
    const api = await startApiProcess(ctx, db, { MINIMCP_MASTER_KEY: agent.masterKeyBase64 });
    const [user] = await createApiUsers(db, 1);
    const stored = await fetch(`${api.url}/v1/keys/github`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${user!.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key: FAKE_GITHUB_KEY }),
    });
    if (stored.status !== 200)
      throw new Error(`PUT /v1/keys/github answered ${stored.status}: ${await stored.text()}`);

    const totals: Record<string, { p50: number; p95: number }> = {};
    for (const type of ['demo', 'github']) {
      ctx.log(`create-ready: ${type}`);
      for (let i = 0; i < WARMUP; i++) await createOnce(api, user!, type);
      const samples: Sample[] = [];
      const bare: number[] = [];
      // Bare spawns interleaved with the creates, so both see the same machine load.
      const bareEvery = Math.max(1, Math.floor(CREATES / BARE));
      for (let i = 0; i < CREATES; i++) {
        samples.push(await createOnce(api, user!, type));
        if (i % bareEvery === bareEvery - 1 && bare.length < BARE)
          bare.push(await bareChildMs(SCRIPTS[type]!, { MINIMCP_API_KEY: FAKE_GITHUB_KEY }));
      }
      await sleep(500); // the agent ships its log lines every 250 ms
      const ids = sql.array(
        samples.map((s) => s.id),
        'uuid',
      );
      const handshakes = await db.owner.anyFirst(sql.type(z.object({ ms: z.number() }))`
        SELECT substring(l.message FROM 'ready in (\\d+) ms')::float8 AS ms
        FROM mcp_logs l
        WHERE l.mcp_instance_id = ANY(${ids}) AND l.source = 'system' AND l.message LIKE 'ready in %'`);
      const poolHits = await db.owner.oneFirst(sql.type(z.object({ hits: z.number() }))`
        SELECT count(DISTINCT l.mcp_instance_id)::int AS hits FROM mcp_logs l
        WHERE l.mcp_instance_id = ANY(${ids}) AND l.source = 'system'
          AND l.message LIKE 'spawned pid % (attempt 0, from the warm pool)'`);
      totals[type] = addRows(report, type, samples, [...handshakes], bare, poolHits);
    }
    report.figures['github.upstream_requests'] = github.requests();
    for (const type of ['demo', 'github'])
      report.targets.push({
        name: `create → first tools/list p50 (${type})`,
        goal: '≤ 250 ms',
        actual: `${fmt(totals[type]!.p50, 0)} ms`,
        met: totals[type]!.p50 <= 250,
      });
  },
};
