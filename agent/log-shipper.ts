// Ships log lines to mcp_logs: one writer per agent, multi-row inserts, a
// bounded in-memory queue with backpressure, and a bounded on-disk spool that
// holds lines (in order) while the database is unreachable. Every line carries
// an id chosen here, so a batch retried after an ambiguous failure lands once.
// Lines that cannot be kept are counted and reported per instance, never
// silently lost.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DatabasePool } from 'slonik';
import { z } from 'zod';
import { insertLogs, type NewLogEntry } from '../core/db/logs.js';
import { LogLevel, LogSource } from '../core/domain.js';

export interface LogShipperOptions {
  pool: DatabasePool;
  /** Folder for spool segments; created if missing. */
  spoolDir: string;
  /** Lines per INSERT. */
  batchSize?: number;
  /** How often queued lines are written. */
  flushIntervalMs?: number;
  /** In-memory bound; push() answers false beyond it (backpressure). */
  maxQueuedLines?: number;
  /** On-disk bound; whole batches beyond it are dropped and counted. */
  maxSpoolBytes?: number;
  /** First retry delay while the database is unreachable (doubles up to 5 s). */
  retryDelayMs?: number;
  /** Agent-side diagnostics (never log line contents). */
  onDiagnostic?: (message: string, context?: Record<string, unknown>) => void;
}

export interface LogShipperStats {
  queued: number;
  shipped: number;
  spooledLines: number;
  spoolBytes: number;
  dropped: number;
  databaseReachable: boolean;
}

export interface LogShipper {
  /** Queues a line. false means the queue is full: pause the producer until onDrain. */
  push(entry: NewLogEntry): boolean;
  /** Runs the callback once the queue has room again. */
  onDrain(callback: () => void): void;
  /** Writes everything queued (to the database, or to the spool when it is down). */
  flush(): Promise<void>;
  stats(): LogShipperStats;
  /** Flushes and stops the timer; lines still spooled stay on disk for the next start. */
  close(): Promise<void>;
}

const SpooledLine = z.object({
  id: z.string().uuid(),
  instanceId: z.string().uuid(),
  timestamp: z.string(),
  level: LogLevel,
  source: LogSource,
  message: z.string(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

/** Connection-level failures: the batch is kept for later, not dropped. */
function isUnreachable(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const e = current as { name?: string; code?: string; message?: string; cause?: unknown };
    if (
      e.name === 'ConnectionError' ||
      e.name === 'BackendTerminatedError' ||
      e.name === 'BackendTerminatedUnexpectedlyError'
    )
      return true;
    if (
      typeof e.code === 'string' &&
      (/^(08|57P)/.test(e.code) ||
        ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(e.code))
    )
      return true;
    if (
      typeof e.message === 'string' &&
      /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect/i.test(
        e.message,
      )
    )
      return true;
    current = e.cause;
  }
  return false;
}

export async function createLogShipper(options: LogShipperOptions): Promise<LogShipper> {
  const batchSize = options.batchSize ?? 5000;
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const maxQueuedLines = options.maxQueuedLines ?? 50_000;
  const maxSpoolBytes = options.maxSpoolBytes ?? 256 * 1024 * 1024;
  const baseRetryDelayMs = options.retryDelayMs ?? 250;
  const diagnostic = options.onDiagnostic ?? (() => undefined);
  await mkdir(options.spoolDir, { recursive: true, mode: 0o700 });

  let queue: NewLogEntry[] = [];
  const drainCallbacks: Array<() => void> = [];
  let shipped = 0;
  let dropped = 0;
  /** Drops not yet reported to the database, per instance. */
  const unreportedDrops = new Map<string, number>();
  let databaseReachable = true;
  let retryDelayMs = baseRetryDelayMs;
  let nextAttemptAt = 0;
  let closed = false;

  // Spool segments, oldest first: <seq>.jsonl, one batch each.
  const existing = (await readdir(options.spoolDir))
    .filter((f) => /^\d{12}\.jsonl$/.test(f))
    .sort();
  const segments: Array<{ file: string; bytes: number; lines: number }> = [];
  for (const file of existing) {
    const full = path.join(options.spoolDir, file);
    const content = await readFile(full, 'utf8');
    segments.push({
      file: full,
      bytes: (await stat(full)).size,
      lines: content.split('\n').filter(Boolean).length,
    });
  }
  let nextSegment = existing.length ? Number(existing[existing.length - 1]!.slice(0, 12)) + 1 : 0;
  const spoolBytes = () => segments.reduce((sum, s) => sum + s.bytes, 0);
  const spooledLines = () => segments.reduce((sum, s) => sum + s.lines, 0);

  const countDrop = (entries: readonly NewLogEntry[]) => {
    dropped += entries.length;
    for (const e of entries)
      unreportedDrops.set(e.instanceId, (unreportedDrops.get(e.instanceId) ?? 0) + 1);
  };

  const spool = async (entries: readonly NewLogEntry[]) => {
    const body =
      entries
        .map((e) => JSON.stringify({ ...e, id: e.id, timestamp: e.timestamp.toISOString() }))
        .join('\n') + '\n';
    const bytes = Buffer.byteLength(body);
    if (spoolBytes() + bytes > maxSpoolBytes) {
      countDrop(entries);
      diagnostic('log spool full, batch dropped', { lines: entries.length });
      return;
    }
    const file = path.join(options.spoolDir, `${String(nextSegment++).padStart(12, '0')}.jsonl`);
    await writeFile(file, body, { mode: 0o600 });
    segments.push({ file, bytes, lines: entries.length });
  };

  const readSegment = async (file: string): Promise<NewLogEntry[]> => {
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    const entries: NewLogEntry[] = [];
    for (const line of lines) {
      const parsed = SpooledLine.safeParse(JSON.parse(line));
      if (parsed.success)
        entries.push({ ...parsed.data, timestamp: new Date(parsed.data.timestamp) });
    }
    return entries;
  };

  /** Inserts one batch; on a data error, line by line so one bad line cannot block the rest. */
  const insert = async (entries: readonly NewLogEntry[]) => {
    try {
      shipped += await insertLogs(options.pool, entries);
    } catch (error) {
      if (isUnreachable(error)) throw error;
      let bad = 0;
      for (const entry of entries) {
        try {
          shipped += await insertLogs(options.pool, [entry]);
        } catch (lineError) {
          if (isUnreachable(lineError)) throw lineError;
          bad++;
          countDrop([entry]);
        }
      }
      diagnostic('log lines refused by the database', { lines: bad, error: String(error) });
    }
  };

  const reportDrops = async () => {
    if (unreportedDrops.size === 0) return;
    const reports: NewLogEntry[] = [...unreportedDrops].map(([instanceId, n]) => ({
      id: randomUUID(),
      instanceId,
      timestamp: new Date(),
      level: 'warn',
      source: 'system',
      message: `${n} log line(s) were dropped: the agent could not keep them (log queue or disk spool full)`,
      metadata: { dropped_lines: n },
    }));
    await insertLogs(options.pool, reports);
    unreportedDrops.clear();
  };

  const releaseWaiters = () => {
    if (queue.length >= maxQueuedLines) return;
    for (const callback of drainCallbacks.splice(0)) callback();
  };

  let writing: Promise<void> | undefined;
  const writeOnce = async (force: boolean) => {
    // While the database is down, new batches go behind the spooled ones so order holds.
    if (!databaseReachable && !force && Date.now() < nextAttemptAt) {
      while (queue.length > 0) await spool(queue.splice(0, batchSize));
      releaseWaiters();
      return;
    }
    try {
      while (segments.length > 0) {
        const segment = segments[0]!;
        await insert(await readSegment(segment.file));
        await rm(segment.file, { force: true });
        segments.shift();
      }
      while (queue.length > 0) {
        const batch = queue.slice(0, batchSize);
        await insert(batch);
        queue = queue.slice(batch.length);
        releaseWaiters();
      }
      await reportDrops();
      if (!databaseReachable) diagnostic('database reachable again; log spool replayed');
      databaseReachable = true;
      retryDelayMs = baseRetryDelayMs;
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      if (databaseReachable) diagnostic('database unreachable; spooling logs to disk');
      databaseReachable = false;
      nextAttemptAt = Date.now() + retryDelayMs;
      retryDelayMs = Math.min(retryDelayMs * 2, 5000);
      while (queue.length > 0) await spool(queue.splice(0, batchSize));
      releaseWaiters();
    }
  };

  const write = (force = false): Promise<void> => {
    writing ??= writeOnce(force)
      .catch((error: unknown) => diagnostic('log shipping failed', { error: String(error) }))
      .finally(() => {
        writing = undefined;
      });
    return writing;
  };

  const timer = setInterval(() => {
    if (queue.length > 0 || segments.length > 0 || unreportedDrops.size > 0) void write();
  }, flushIntervalMs);
  timer.unref();

  return {
    push(entry) {
      if (closed) return false;
      // A producer that ignores backpressure must not grow memory without
      // bound: past twice the soft limit, lines are dropped, counted and reported.
      if (queue.length >= maxQueuedLines * 2) {
        countDrop([entry]);
        return false;
      }
      queue.push(entry.id ? entry : { ...entry, id: randomUUID() });
      if (queue.length >= batchSize) void write();
      return queue.length < maxQueuedLines;
    },
    onDrain(callback) {
      if (queue.length < maxQueuedLines) callback();
      else drainCallbacks.push(callback);
    },
    async flush() {
      while (writing) await writing;
      await write(true);
    },
    stats: () => ({
      queued: queue.length,
      shipped,
      spooledLines: spooledLines(),
      spoolBytes: spoolBytes(),
      dropped,
      databaseReachable,
    }),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      while (writing) await writing;
      await write(true);
    },
  };
}
