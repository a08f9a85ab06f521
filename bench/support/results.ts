// What a benchmark reports (a table, its figures, its targets) and where the
// run keeps it: bench/results.json (every figure, machine-readable) and
// bench/RESULTS.md (the tables a reader compares), each with the machine,
// Node version, date and commit the figures came from.
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';

export type Figure = number | string | boolean | null;

export interface Target {
  /** What is compared, e.g. "MiniMCP p50 / supergateway p50 (c=1)". */
  name: string;
  /** The goal, e.g. "≤ 0.6". */
  goal: string;
  /** The measured value, as shown. */
  actual: string;
  met: boolean;
}

export interface Table {
  columns: string[];
  rows: string[][];
}

export interface BenchmarkResult {
  name: string;
  title: string;
  /** How it was measured: what drives the load, through which path. */
  method: string[];
  tables: Table[];
  figures: Record<string, Figure>;
  targets: Target[];
  /** What limits a figure, what is stubbed, what is left to do. */
  notes: string[];
  durationMs: number;
  /** Set when the benchmark failed; its figures are whatever it had gathered. */
  error?: string;
  environment: RunEnvironment;
}

export interface RunEnvironment {
  date: string;
  node: string;
  platform: string;
  cpuModel: string;
  cpuCount: number;
  memoryGb: number;
  /** 1-minute load average when the benchmark started: other work on a shared machine. */
  loadAverage: number;
  gitCommit: string;
  gitDirty: boolean;
}

export function describeEnvironment(repoRoot: string): RunEnvironment {
  const cpus = os.cpus();
  const git = (...args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: 'pipe' }).trim();
    } catch {
      return '';
    }
  };
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    gitCommit: git('rev-parse', '--short=12', 'HEAD') || 'unknown',
    gitDirty: git('status', '--porcelain').length > 0,
  };
}

/** A plain-text table for the terminal, columns padded to their widest cell. */
export function formatTable(table: Table): string {
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, ...table.rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ');
  return [
    line(table.columns),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...table.rows.map(line),
  ].join('\n');
}

export function markdownTable(table: Table): string {
  const escape = (cell: string) => cell.replaceAll('|', '\\|');
  return [
    `| ${table.columns.map(escape).join(' | ')} |`,
    `| ${table.columns.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...table.rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

export function targetsTable(targets: readonly Target[]): Table {
  return {
    columns: ['target', 'goal', 'measured', 'met'],
    rows: targets.map((t) => [t.name, t.goal, t.actual, t.met ? 'yes' : 'NO']),
  };
}

/** The terminal report of one benchmark. */
export function formatResult(result: BenchmarkResult): string {
  const parts = [`== ${result.title} (${(result.durationMs / 1000).toFixed(1)} s) ==`];
  if (result.error) parts.push(`FAILED: ${result.error}`);
  for (const table of result.tables) parts.push(formatTable(table));
  if (result.targets.length > 0) parts.push(formatTable(targetsTable(result.targets)));
  for (const note of result.notes) parts.push(`note: ${note}`);
  return parts.join('\n\n');
}

interface ResultsFile {
  updated: string;
  command: string;
  benchmarks: Record<string, BenchmarkResult>;
}

const ORDER = [
  'gateway',
  'create-ready',
  'density',
  'log-ingest',
  'port-contention',
  'api',
  'restart',
];

/**
 * Writes results.json and RESULTS.md. A run of some benchmarks keeps the
 * others' last results (each carries its own environment and date).
 */
export async function writeResults(
  dir: string,
  results: readonly BenchmarkResult[],
): Promise<{ json: string; markdown: string }> {
  const jsonPath = path.join(dir, 'results.json');
  let previous: ResultsFile | undefined;
  try {
    previous = JSON.parse(await readFile(jsonPath, 'utf8')) as ResultsFile;
  } catch {
    previous = undefined; // first run, or an unreadable file: start over
  }
  const benchmarks: Record<string, BenchmarkResult> = { ...(previous?.benchmarks ?? {}) };
  for (const result of results) benchmarks[result.name] = result;
  const ordered = Object.fromEntries(
    Object.entries(benchmarks).sort(
      ([a], [b]) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99),
    ),
  );
  const file: ResultsFile = {
    updated: new Date().toISOString(),
    command: 'npm run bench',
    benchmarks: ordered,
  };
  // Written as the repository's formatter would, so `npm run lint` stays green.
  const options = (await resolveConfig(jsonPath)) ?? {};
  await writeFile(jsonPath, await format(JSON.stringify(file), { ...options, parser: 'json' }));
  const markdownPath = path.join(dir, 'RESULTS.md');
  await writeFile(
    markdownPath,
    await format(renderMarkdown(file), { ...options, parser: 'markdown' }),
  );
  return { json: jsonPath, markdown: markdownPath };
}

function environmentLine(env: RunEnvironment): string {
  return (
    `${env.date.slice(0, 16).replace('T', ' ')} UTC · Node ${env.node} · ${env.cpuCount}× ${env.cpuModel} · ` +
    `${env.memoryGb} GB · load ${env.loadAverage} · commit ${env.gitCommit}${env.gitDirty ? ' (uncommitted changes)' : ''}`
  );
}

function renderMarkdown(file: ResultsFile): string {
  const results = Object.values(file.benchmarks);
  const out = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (`npm run bench -- <name>` runs one: ' +
      `${ORDER.join(', ')}). Loopback only, one machine; compare figures as ratios within one run — ` +
      'the machines are shared and noisy. Raw figures: `bench/results.json`.',
    '',
    '## Targets',
    '',
    markdownTable({
      columns: ['benchmark', 'target', 'goal', 'measured', 'met'],
      rows: results.flatMap((r) =>
        r.error && r.targets.length === 0
          ? [[r.name, '(benchmark failed)', '', r.error.slice(0, 80), 'NO']]
          : r.targets.map((t) => [r.name, t.name, t.goal, t.actual, t.met ? 'yes' : 'NO']),
      ),
    }),
  ];
  for (const result of results) {
    out.push(
      '',
      `## ${result.title}`,
      '',
      `_${environmentLine(result.environment)} · took ${(result.durationMs / 1000).toFixed(1)} s_`,
      '',
    );
    if (result.error) out.push(`**Failed:** ${result.error}`, '');
    for (const line of result.method) out.push(`- ${line}`);
    for (const table of result.tables) out.push('', markdownTable(table));
    if (result.targets.length > 0) out.push('', markdownTable(targetsTable(result.targets)));
    if (result.notes.length > 0)
      out.push('', '**Notes**', '', ...result.notes.map((note) => `- ${note}`));
  }
  return out.join('\n') + '\n';
}
