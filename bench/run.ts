// `npm run bench [-- name...]`: runs the benchmarks one after another on the
// local stack, prints each table, writes bench/results.json and
// bench/RESULTS.md, and stops everything it started, even on failure or Ctrl-C.
import '../core/polyfills.js';
import os from 'node:os';
import path from 'node:path';
import { agentRestartBenchmark } from './agent-restart.js';
import { createReadyBenchmark } from './create-ready.js';
import { apiBenchmark } from './api.js';
import { densityBenchmark } from './density.js';
import { gatewayBenchmark } from './gateway-overhead.js';
import { logIngestBenchmark } from './log-ingest.js';
import { portContentionBenchmark } from './port-contention.js';
import { emptyReport, type Benchmark } from './support/benchmark.js';
import { createCleanup, type Cleanup } from './support/cleanup.js';
import {
  describeEnvironment,
  formatResult,
  writeResults,
  type BenchmarkResult,
} from './support/results.js';
import { createBenchContext, createSharedStack, REPO_ROOT } from './support/stack.js';

const BENCHMARKS: readonly Benchmark[] = [
  gatewayBenchmark,
  createReadyBenchmark,
  densityBenchmark,
  logIngestBenchmark,
  portContentionBenchmark,
  apiBenchmark,
  agentRestartBenchmark,
];

function select(args: readonly string[]): Benchmark[] {
  const names = args.filter((arg) => !arg.startsWith('-'));
  if (names.length === 0) return [...BENCHMARKS];
  const unknown = names.filter((name) => !BENCHMARKS.some((b) => b.name === name));
  if (unknown.length > 0)
    throw new Error(
      `unknown benchmark ${unknown.join(', ')}; choose from ${BENCHMARKS.map((b) => b.name).join(', ')}`,
    );
  return BENCHMARKS.filter((b) => names.includes(b.name));
}

async function main(): Promise<number> {
  const selected = select(process.argv.slice(2));
  // Opt-in, for a shared machine: every process the run starts inherits it.
  const nice = process.env.BENCH_NICE;
  if (nice !== undefined && nice !== '') os.setPriority(Number(nice));
  const cleanup = createCleanup();
  const runStartedAt = performance.now();
  const log = (message: string) =>
    process.stderr.write(
      `[bench ${((performance.now() - runStartedAt) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
    );
  let interrupted = false;
  /** The running benchmark's own cleanup (its agents, API, databases). */
  let active: Cleanup | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping everything the run started`);
    void (async () => {
      try {
        await active?.runAll();
      } finally {
        await cleanup.runAll();
        process.exit(130);
      }
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const shared = createSharedStack(cleanup, log);
  const results: BenchmarkResult[] = [];
  try {
    for (const benchmark of selected) {
      const environment = describeEnvironment(REPO_ROOT);
      const report = emptyReport();
      const startedAt = performance.now();
      const benchCleanup = createCleanup();
      active = benchCleanup;
      let error: string | undefined;
      log(`${benchmark.name}: start`);
      try {
        await benchmark.run(createBenchContext(shared, benchCleanup, log), report);
      } catch (caught) {
        error = caught instanceof Error ? (caught.stack ?? caught.message) : String(caught);
        log(`${benchmark.name}: FAILED ${error}`);
      } finally {
        const failures = await benchCleanup.runAll();
        for (const failure of failures) log(`${benchmark.name}: cleanup: ${failure}`);
      }
      const result: BenchmarkResult = {
        name: benchmark.name,
        title: benchmark.title,
        ...report,
        durationMs: Math.round(performance.now() - startedAt),
        ...(error === undefined ? {} : { error: error.split('\n')[0]! }),
        environment,
      };
      // An interrupted benchmark's figures are partial: not worth keeping.
      if (interrupted) break;
      results.push(result);
      process.stdout.write(`\n${formatResult(result)}\n\n`);
    }
  } finally {
    await cleanup.runAll();
  }
  const written = await writeResults(path.join(REPO_ROOT, 'bench'), results);
  log(
    `wrote ${path.relative(REPO_ROOT, written.json)} and ${path.relative(REPO_ROOT, written.markdown)}`,
  );
  const failed = results.filter((r) => r.error !== undefined).length;
  const missed = results.flatMap((r) => r.targets).filter((t) => !t.met).length;
  log(`${results.length} benchmark(s), ${failed} failed, ${missed} target(s) not met`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
