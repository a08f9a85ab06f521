// The local stack the benchmarks run against: one embedded PostgreSQL for the
// run (a fresh migrated database per benchmark), the local TLS material, and
// real host agents as separate processes, so that the agent's memory and CPU
// can be read from /proc without the load generator in them. The agents run
// from the bundle the EC2 nodes install (infra/agent-bundle, built once per
// run): what is measured is what is deployed. Everything started here is
// registered with the run's cleanup.
import '../../core/polyfills.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_NODE_FLAGS } from '../../agent/node/node-flags.js';
import { killOrphans } from '../../agent/child/child-registry.js';
import { createAgentClient, type AgentClient } from '../../lambdas/control/agent-client.js';
import { ensureLocalCertificates, type LocalCertificates } from '../../core/tls.js';
import { buildAgentBundle } from '../../infra/agent-bundle/build.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { agentProcessEnv } from '../../test/support/agent-process.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.js';
import { startTestPostgres } from '../../test/support/test-postgres.js';
import type { Cleanup } from './cleanup.js';
import { isAlive } from './proc.js';

/** dist/ (the benchmarks run from the build). */
export const DIST_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const REPO_ROOT = path.resolve(DIST_ROOT, '..');

export interface BenchContext {
  readonly cleanup: Cleanup;
  /** Progress for the terminal (stderr), never part of the results. */
  log(message: string): void;
  /** A fresh migrated database on the run's PostgreSQL (dropped at the end). */
  database(): Promise<TestDatabase>;
  /** The run's CA, agent and control-plane certificates. */
  tls(): Promise<LocalCertificates>;
  /** A scratch folder, removed at the end. */
  scratchDir(label: string): Promise<string>;
  /** Extra node flags for agent processes (e.g. --cpu-prof), from BENCH_AGENT_NODE_OPTIONS. */
  readonly agentNodeArgs: readonly string[];
  /** The agent's entry in the run's agent bundle (`<bundle>/dist/agent/main.js`). */
  agentEntry(): Promise<string>;
}

/** What lives for the whole run: the PostgreSQL server and the TLS material. */
export interface SharedStack {
  postgres(): Promise<void>;
  tls(): Promise<LocalCertificates>;
  agentEntry(): Promise<string>;
}

export function createSharedStack(
  runCleanup: Cleanup,
  log: (message: string) => void,
): SharedStack {
  let postgres: Promise<void> | undefined;
  let certificates: Promise<LocalCertificates> | undefined;
  let agentEntry: Promise<string> | undefined;
  return {
    postgres() {
      postgres ??= (async () => {
        log('starting PostgreSQL');
        const handle = await startTestPostgres();
        runCleanup.defer('stop PostgreSQL', () => handle.stop());
      })();
      return postgres;
    },
    tls() {
      certificates ??= (async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-bench-tls-'));
        runCleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
        return ensureLocalCertificates(path.join(dir, 'tls'));
      })();
      return certificates;
    },
    agentEntry() {
      agentEntry ??= (async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-bench-agent-bundle-'));
        runCleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
        log('building the agent bundle');
        buildAgentBundle(dir);
        return path.join(dir, 'dist/agent/main.js');
      })();
      return agentEntry;
    },
  };
}

/** One benchmark's context: what it starts is stopped when it ends. */
export function createBenchContext(
  shared: SharedStack,
  cleanup: Cleanup,
  log: (message: string) => void,
): BenchContext {
  const scratchDir = async (label: string) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `minimcp-bench-${label}-`));
    cleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
    return dir;
  };
  return {
    cleanup,
    log,
    async database() {
      await shared.postgres();
      const db = await createTestDatabase({ poolSize: 20 });
      cleanup.defer(`drop database ${db.name}`, () => db.drop());
      return db;
    },
    tls: () => shared.tls(),
    scratchDir,
    agentNodeArgs: (process.env.BENCH_AGENT_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean),
    agentEntry: () => shared.agentEntry(),
  };
}

/** `size` consecutive ports that nothing listens on now, away from the tests' 20000-32767. */
export async function findFreePortRange(size: number): Promise<{ start: number; end: number }> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const start = 41_000 + Math.floor(Math.random() * 180) * 100;
    let free = true;
    for (let port = start; port < start + size && free; port++) free = await canListen(port);
    if (free) return { start, end: start + size - 1 };
  }
  throw new Error(`no ${size} consecutive free ports found in 41000-59000`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () =>
      server.close(() => resolve(true)),
    );
  });
}

export interface AgentProcess {
  readonly pid: number;
  readonly nodeName: string;
  readonly nodeId: string;
  readonly portRange: { start: number; end: number };
  readonly grpc: AgentClient;
  readonly masterKeyBase64: string;
  /** What a second agent needs to come back as this node (see StartAgentOptions.identity). */
  readonly identity: AgentIdentity;
  /** The agent's last output (warnings and errors), for failure messages. */
  output(): string;
  /** SIGKILL, as a crash: no drain, no cleanup; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after `timeoutMs`; leftover children are killed too. */
  stop(timeoutMs?: number): Promise<{ cleanExit: boolean; stopMs: number }>;
}

/** A node's name, state folder, ports and key: the same identity is the same node. */
export interface AgentIdentity {
  nodeName: string;
  dataDir: string;
  portRange: { start: number; end: number };
  grpcPort: number;
}

export interface StartAgentOptions {
  /** The agent role's URL (TestDatabase.agentUrl). */
  databaseUrl: string;
  portCount: number;
  /** Extra agent settings (MINIMCP_*), as environment variables. */
  env?: Record<string, string>;
  masterKeyBase64?: string;
  /** Come back as a node that ran before (after kill()), instead of a new one. */
  identity?: AgentIdentity;
}

/** Starts the bundled agent (`<bundle>/dist/agent/main.js`) and resolves once its gRPC server answers Health. */
export async function startAgentProcess(
  ctx: BenchContext,
  options: StartAgentOptions,
): Promise<AgentProcess> {
  const tls = await ctx.tls();
  const identity: AgentIdentity = options.identity ?? {
    nodeName: `bench-${randomBytes(3).toString('hex')}`,
    dataDir: await ctx.scratchDir('agent'),
    portRange: await findFreePortRange(options.portCount),
    grpcPort: await findFreePort(),
  };
  const { nodeName, dataDir, portRange, grpcPort } = identity;
  const masterKeyBase64 = options.masterKeyBase64 ?? randomBytes(32).toString('base64');
  const entry = await ctx.agentEntry();
  const child = spawn(
    process.execPath,
    // The flags the agent runs with in production, then any the run adds.
    [...AGENT_NODE_FLAGS, ...ctx.agentNodeArgs, entry],
    {
      cwd: dataDir,
      env: {
        ...agentProcessEnv({
          databaseUrl: options.databaseUrl,
          dataDir,
          tlsDir: tls.dir,
          nodeName,
          portRange,
          grpcPort,
          masterKeyBase64,
        }),
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const { pid, output, exited } = watchBenchChild(child);
  const grpc = createAgentClient({
    address: `127.0.0.1:${grpcPort}`,
    tls: tls.controlPlane,
    defaultDeadlineMs: 60_000,
  });

  let stopping: Promise<{ cleanExit: boolean; stopMs: number }> | undefined;
  const stop = (timeoutMs = 45_000) =>
    (stopping ??= (async () => {
      const startedAt = performance.now();
      grpc.close();
      let cleanExit = true;
      if (isAlive(pid)) {
        child.kill('SIGTERM');
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(true), timeoutMs).unref()),
        ]);
        if (timedOut) {
          cleanExit = false;
          child.kill('SIGKILL');
          await exited;
        }
      }
      const stopMs = performance.now() - startedAt;
      // Children the agent could not stop (after a SIGKILL) are recorded in its state folder.
      const orphans = await killOrphans(path.join(dataDir, `agent-${nodeName}`));
      if (orphans.length > 0) cleanExit = false;
      return { cleanExit: cleanExit && child.exitCode === 0, stopMs };
    })());
  ctx.cleanup.defer(`stop agent ${nodeName}`, async () => {
    await stop();
  });

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`agent ${nodeName} exited while starting: ${output().slice(-2_000)}`);
    try {
      const health = await grpc.health({ deadlineMs: 2_000 });
      if (health.nodeId !== '') {
        return {
          pid,
          nodeName,
          nodeId: health.nodeId,
          portRange,
          grpc,
          masterKeyBase64,
          identity,
          output,
          async kill() {
            grpc.close();
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            await exited;
          },
          stop,
        };
      }
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`agent ${nodeName} did not answer Health within 60 s`, { cause: error });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export { mapLimit } from '../../agent/node/map-limit.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A process the benchmark started (stdout and stderr piped): its last 8 KB of
 * output kept for failure messages, and a last resort if the run itself
 * dies — it is killed then, so it does not outlive the run.
 */
export function watchBenchChild(child: ChildProcess): {
  pid: number;
  output(): string;
  exited: Promise<void>;
} {
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  return { pid: child.pid!, output: () => output, exited };
}
