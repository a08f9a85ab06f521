// The API: p50/p99 and requests/s of GET /v1/instances/{id} and POST
// /v1/instances at concurrency 16 (autocannon against the local server), and
// the Lambda side: the size of the handler bundled as it is deployed, and the
// time from a fresh process to the first answered API Gateway v2 event.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import autocannon, { type Client, type Result } from 'autocannon';
import { build } from 'esbuild';
import type { Benchmark, Report } from './support/benchmark.js';
import {
  createApiUsers,
  setInstanceLimit,
  startApiProcess,
  startFakeNode,
  type ApiUser,
} from './support/api-stack.js';
import { REPO_ROOT, type BenchContext } from './support/stack.js';
import { fmt, median, round } from './support/stats.js';
import type { TestDatabase } from '../test/support/database.js';

const CONNECTIONS = 16;
const DURATION_S = Number(process.env.BENCH_API_SECONDS ?? 8);
const COLD_STARTS = 5;

function addLoadRow(report: Report, name: string, label: string, result: Result): void {
  const answered = Object.values(result.statusCodeStats).reduce((n, s) => n + Number(s.count), 0);
  const rate = answered / result.duration;
  const statuses = Object.entries(result.statusCodeStats)
    .map(([code, s]) => `${code}×${s.count}`)
    .join(' ');
  report.tables[0]!.rows.push([
    label,
    fmt(result.latency.p50, 1),
    fmt(result.latency.p99, 1),
    fmt(rate, 0),
    statuses,
    String(result.errors),
  ]);
  Object.assign(report.figures, {
    [`${name}.p50_ms`]: result.latency.p50,
    [`${name}.p99_ms`]: result.latency.p99,
    [`${name}.requests_per_s`]: round(rate, 0),
    [`${name}.non2xx`]: result.non2xx,
    [`${name}.errors`]: result.errors,
  });
}

/** Bundles lambdas/api.ts the way infra/constructs/node-function.ts does (ESM, node22, minified). */
async function bundleHandler(
  dir: string,
): Promise<{ file: string; bytes: number; gzipBytes: number }> {
  const file = path.join(dir, 'lambdas/index.mjs');
  await build({
    entryPoints: [path.join(REPO_ROOT, 'lambdas/api.ts')],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    minify: true,
    external: ['@aws-sdk/*', 'pg-native'],
    banner: {
      js: [
        "import { createRequire as __minimcpCreateRequire } from 'node:module';",
        "import { fileURLToPath as __minimcpFileUrlToPath } from 'node:url';",
        'const require = __minimcpCreateRequire(import.meta.url);',
        'const __filename = __minimcpFileUrlToPath(import.meta.url);',
        "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
      ].join(' '),
    },
    define: { 'import.meta.url': JSON.stringify(`file://${file}`) },
    logLevel: 'error',
  });
  // Beside the bundle as on Lambda: the gRPC contract it loads, and the AWS SDK the runtime provides.
  await cp(path.join(REPO_ROOT, 'proto'), path.join(dir, 'proto'), { recursive: true });
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const bytes = (await stat(file)).size;
  return { file, bytes, gzipBytes: gzipSync(await readFile(file)).length };
}

/** An API Gateway HTTP API (payload v2) event for GET `path` with a bearer token. */
function gatewayEvent(pathName: string, token: string): Record<string, unknown> {
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: pathName,
    rawQueryString: '',
    headers: {
      authorization: `Bearer ${token}`,
      host: 'api.example.test',
      'user-agent': 'minimcp-bench',
    },
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      domainName: 'api.example.test',
      domainPrefix: 'api',
      http: {
        method: 'GET',
        path: pathName,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'minimcp-bench',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
}

interface ColdStart {
  totalMs: number;
  importMs: number;
  firstEventMs: number;
  status: number;
}

/** `node invoke.mjs` in a fresh process: import the bundle, answer one event, report. */
async function coldStart(
  ctx: BenchContext,
  dir: string,
  db: TestDatabase,
  event: Record<string, unknown>,
): Promise<ColdStart> {
  const tls = await ctx.tls();
  const startedAt = performance.now();
  const child = spawn(process.execPath, [path.join(dir, 'invoke.mjs')], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: db.appUrl,
      MINIMCP_TLS_DIR: tls.dir,
      MINIMCP_DATA_DIR: dir,
      LOG_LEVEL: 'warn',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      BENCH_EVENT: JSON.stringify(event),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-2_000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const answeredAt = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (out.includes('\n')) resolve(performance.now());
    });
    child.once('exit', (code) => reject(new Error(`invoke.mjs exited with ${code}: ${err}`)));
  }).finally(() => clearTimeout(timer));
  const line = JSON.parse(out.slice(0, out.indexOf('\n'))) as Omit<ColdStart, 'totalMs'>;
  await new Promise<void>((resolve) =>
    child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
  return { totalMs: answeredAt - startedAt, ...line };
}

const INVOKE = `// Fresh process: load the handler, answer one API Gateway v2 event, report the times.
const t0 = performance.now();
const { handler } = await import('./lambdas/index.mjs');
const t1 = performance.now();
const answer = await handler(JSON.parse(process.env.BENCH_EVENT));
const t2 = performance.now();
process.stdout.write(JSON.stringify({ importMs: t1 - t0, firstEventMs: t2 - t1, status: answer.statusCode }) + '\\n');
process.exit(0);
`;

async function loadTest(
  url: string,
  users: readonly ApiUser[],
  request: (user: ApiUser, index: number) => { method: string; path: string; body?: string },
): Promise<Result> {
  let next = 0;
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    // One user per connection: a user's creates are serialised by design (the per-user limit).
    setupClient: (client: Client) => {
      const index = next++;
      const user = users[index % users.length]!;
      const { method, path: pathName, body } = request(user, index);
      client.setRequests([
        {
          method,
          path: pathName,
          headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body }),
        },
      ]);
    },
  });
}

export const apiBenchmark: Benchmark = {
  name: 'api',
  title: 'API (local server and Lambda handler)',
  async run(ctx, report) {
    report.method.push(
      `autocannon ${CONNECTIONS} connections for ${DURATION_S} s per route against the local API server ` +
        '(its own process, default settings: 10 database connections, RLS-bound API role); one user and token per connection.',
      "`POST /v1/instances` includes the agent call (gRPC StartInstance with mutual TLS) to the test suite's fake agent, " +
        'which answers running at once: the figure is the API and the database, not a child starting (see create-ready).',
      'Lambda: `lambdas/api.ts` bundled as infra/constructs/node-function.ts does (esbuild, ESM, node22, minified, ' +
        '@aws-sdk external, no source map); then a fresh `node` process imports it and answers one API Gateway v2 event ' +
        `(\`GET /v1/instances/{id}\` with a user token: config, pool, first connection, auth, read), ${COLD_STARTS} times.`,
    );
    report.tables.push({
      columns: ['route (c=16)', 'p50 ms', 'p99 ms', 'req/s', 'status codes', 'errors'],
      rows: [],
    });
    const db = await ctx.database();
    await startFakeNode(ctx, db, 20_000);
    await setInstanceLimit(db, 1_000_000);
    const api = await startApiProcess(ctx, db);
    const users = await createApiUsers(db, CONNECTIONS);
    const ids: string[] = [];
    for (const user of users) {
      const response = await fetch(`${api.url}/v1/instances`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'demo', duration_minutes: 60 }),
      });
      const body = (await response.json()) as { id: string };
      if (response.status !== 201)
        throw new Error(`POST /v1/instances answered ${response.status}`);
      ids.push(body.id);
    }

    ctx.log('api: GET /v1/instances/{id}');
    const get = await loadTest(api.url, users, (_, index) => ({
      method: 'GET',
      path: `/v1/instances/${ids[index % ids.length]}`,
    }));
    addLoadRow(report, 'get_instance', 'GET /v1/instances/{id}', get);
    ctx.log('api: POST /v1/instances');
    const post = await loadTest(api.url, users, () => ({
      method: 'POST',
      path: '/v1/instances',
      body: JSON.stringify({ type: 'demo', duration_minutes: 60 }),
    }));
    addLoadRow(report, 'post_instances', 'POST /v1/instances (with the agent call)', post);

    ctx.log('api: Lambda bundle and cold starts');
    const dir = await ctx.scratchDir('lambda');
    const bundle = await bundleHandler(dir);
    await writeFile(path.join(dir, 'invoke.mjs'), INVOKE);
    const event = gatewayEvent(`/v1/instances/${ids[0]}`, users[0]!.token);
    const colds: ColdStart[] = [];
    for (let i = 0; i < COLD_STARTS; i++) colds.push(await coldStart(ctx, dir, db, event));
    const statuses = [...new Set(colds.map((c) => c.status))];
    report.tables.push({
      columns: ['Lambda handler', 'value'],
      rows: [
        [
          'bundle (minified, no source map)',
          `${fmt(bundle.bytes / 1024, 0)} KB (${fmt(bundle.gzipBytes / 1024, 0)} KB gzipped)`,
        ],
        [
          `fresh process → first event answered (median of ${COLD_STARTS})`,
          `${fmt(median(colds.map((c) => c.totalMs)), 0)} ms`,
        ],
        ['of which: import the bundle', `${fmt(median(colds.map((c) => c.importMs)), 0)} ms`],
        [
          'of which: first event (config, pool, auth, query)',
          `${fmt(median(colds.map((c) => c.firstEventMs)), 0)} ms`,
        ],
        ['status of the first answer', statuses.join(', ')],
      ],
    });
    Object.assign(report.figures, {
      'lambda.bundle_bytes': bundle.bytes,
      'lambda.bundle_gzip_bytes': bundle.gzipBytes,
      'lambda.cold_total_ms': round(median(colds.map((c) => c.totalMs)), 0),
      'lambda.cold_import_ms': round(median(colds.map((c) => c.importMs)), 0),
      'lambda.cold_first_event_ms': round(median(colds.map((c) => c.firstEventMs)), 0),
      'lambda.first_status': statuses.join(','),
    });
    if (statuses.some((s) => s !== 200))
      report.notes.push(`the cold-start event was answered ${statuses.join(', ')}, not 200`);
  },
};
