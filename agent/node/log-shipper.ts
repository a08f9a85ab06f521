// Ships log lines to mcp_logs: one writer per agent with up to a few multi-row
// INSERTs in flight on separate connections, a bounded in-memory queue of
// columnar blocks with backpressure, and a bounded on-disk spool that holds
// lines (in order) while the database is unreachable. Every line carries an id
// chosen here, so a batch retried after an ambiguous failure lands once.
// Lines that cannot be kept are counted and reported per instance, never
// silently lost.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  ConnectionError,
  type DatabasePool,
} from 'slonik';
import { z } from 'zod';
import { insertLogColumns, type LogColumns, type NewLogEntry } from '../../core/db/logs.js';
import { LogLevel, LogSource, type JsonObject } from '../../core/domain.js';

export interface LogShipperOptions {
  pool: DatabasePool;
  /** Folder for spool segments; created if missing. */
  spoolDir: string;
  /** Most lines per INSERT. */
  batchSize?: number;
  /** INSERTs in flight at once, each on its own connection of the pool. */
  maxConcurrentInserts?: number;
  /** How often a partly filled batch is written. */
  flushIntervalMs?: number;
  /**
   * In-memory bound: push() answers false from here on (backpressure) and
   * onDrain fires once half of it is written. Twice this is a hard bound for
   * producers that ignore the answer: lines past it are dropped and counted.
   */
  maxQueuedLines?: number;
  /** On-disk bound; whole batches beyond it are dropped and counted. */
  maxSpoolBytes?: number;
  /** First retry delay while the database is unreachable (doubles up to 5 s). */
  retryDelayMs?: number;
  /** Agent-side diagnostics (never log line contents). */
  onDiagnostic?: (message: string, context?: Record<string, unknown>) => void;
}

export interface LogShipperStats {
  /** Lines not stored yet: waiting, or in an INSERT in flight. */
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
  /** Runs the callback once the queue has room again (at once if it has now). */
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
    // By class: slonik's errors keep the name "Error".
    if (
      current instanceof ConnectionError ||
      current instanceof BackendTerminatedError ||
      current instanceof BackendTerminatedUnexpectedlyError
    )
      return true;
    const e = current as { code?: string; message?: string; cause?: unknown };
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

/** Queued lines in columns (no object per line); `seq` keeps blocks in push order. */
interface Block extends LogColumns {
  readonly seq: number;
  /**
   * Ids generated here and never sent: the first INSERT can skip the per-row
   * conflict check. Cleared by an explicit id and by any failed attempt
   * (after which the lines may be stored already).
   */
  fresh: boolean;
  readonly ids: string[];
  readonly instanceIds: string[];
  readonly timestamps: number[];
  readonly levels: LogLevel[];
  readonly sources: LogSource[];
  readonly messages: string[];
  readonly metadata: (JsonObject | undefined)[];
}

function newBlock(seq: number): Block {
  return {
    seq,
    fresh: seq >= 0,
    ids: [],
    instanceIds: [],
    timestamps: [],
    levels: [],
    sources: [],
    messages: [],
    metadata: [],
  };
}

function append(block: Block, entry: NewLogEntry, id: string): void {
  block.ids.push(id);
  block.instanceIds.push(entry.instanceId);
  block.timestamps.push(entry.timestamp.getTime());
  block.levels.push(entry.level);
  block.sources.push(entry.source);
  block.messages.push(entry.message);
  block.metadata.push(entry.metadata);
}

/**
 * Line ids: a random prefix per shipper and a counter in the last 48 bits
 * (UUID version 8), so ids grow in push order and lines of one millisecond
 * still sort as they were written (mcp_logs orders by timestamp, then id).
 */
function createIdSource(): () => string {
  const r = randomBytes(10).toString('hex');
  const variant = '89ab'[Number.parseInt(r[18]!, 16) & 3]!;
  const prefix = `${r.slice(0, 8)}-${r.slice(8, 12)}-8${r.slice(12, 15)}-${variant}${r.slice(15, 18)}-`;
  let counter = 0;
  return () => prefix + (counter++).toString(16).padStart(12, '0');
}

export async function createLogShipper(options: LogShipperOptions): Promise<LogShipper> {
  const batchSize = options.batchSize ?? 10_000;
  const concurrency = Math.max(1, options.maxConcurrentInserts ?? 2);
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const maxQueuedLines = options.maxQueuedLines ?? 50_000;
  // Hysteresis: producers resume once half the bound is free, not one line at a time.
  const resumeAt = Math.floor(maxQueuedLines / 2);
  const maxSpoolBytes = options.maxSpoolBytes ?? 256 * 1024 * 1024;
  const baseRetryDelayMs = options.retryDelayMs ?? 250;
  const diagnostic = options.onDiagnostic ?? (() => undefined);
  const nextId = createIdSource();
  await mkdir(options.spoolDir, { recursive: true, mode: 0o700 });

  /** Blocks waiting to be written, oldest first; `open` (the last) is still filling. */
  const blocks: Block[] = [];
  let open: Block | undefined;
  let nextSeq = 0;
  let waitingLines = 0;
  let inFlightLines = 0;
  const queued = () => waitingLines + inFlightLines;
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

  /** Lines of an instance dropped and not reported yet (a report that failed puts its count back). */
  const owe = (instanceId: string, lines: number) =>
    unreportedDrops.set(instanceId, (unreportedDrops.get(instanceId) ?? 0) + lines);
  const countDrop = (instanceId: string, lines: number) => {
    dropped += lines;
    owe(instanceId, lines);
  };

  const releaseWaiters = () => {
    if (queued() > resumeAt) return;
    for (const callback of drainCallbacks.splice(0)) callback();
  };

  const spool = async (block: Block) => {
    let body = '';
    for (let i = 0; i < block.ids.length; i++) {
      const metadata = block.metadata[i];
      body +=
        JSON.stringify({
          id: block.ids[i],
          instanceId: block.instanceIds[i],
          timestamp: new Date(block.timestamps[i]!).toISOString(),
          level: block.levels[i],
          source: block.sources[i],
          message: block.messages[i],
          ...(metadata ? { metadata } : {}),
        }) + '\n';
    }
    const bytes = Buffer.byteLength(body);
    if (spoolBytes() + bytes > maxSpoolBytes) {
      for (const instanceId of block.instanceIds) countDrop(instanceId, 1);
      diagnostic('log spool full, batch dropped', { lines: block.ids.length });
      return;
    }
    const file = path.join(options.spoolDir, `${String(nextSegment++).padStart(12, '0')}.jsonl`);
    await writeFile(file, body, { mode: 0o600 });
    segments.push({ file, bytes, lines: block.ids.length });
  };

  /** Everything queued goes to the spool, behind what is there already, in order. */
  const spoolQueued = async () => {
    while (blocks.length > 0) {
      const block = blocks.shift()!;
      if (block === open) open = undefined; // later pushes start a new block
      waitingLines -= block.ids.length;
      await spool(block);
    }
    releaseWaiters();
  };

  const readSegment = async (file: string): Promise<Block> => {
    const block = newBlock(-1);
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (!line) continue;
      const parsed = SpooledLine.safeParse(JSON.parse(line));
      if (parsed.success)
        append(
          block,
          { ...parsed.data, timestamp: new Date(parsed.data.timestamp) },
          parsed.data.id,
        );
    }
    return block;
  };

  /**
   * Inserts lines from..to of a block, skipping ids already stored. A data
   * error (a line the database refuses) splits the range in halves until the
   * bad lines are found, so one bad line costs a few statements and cannot
   * block the rest. Unreachable-database errors propagate: the caller keeps
   * the whole block, and replaying it is harmless (ON CONFLICT id).
   */
  const insertRange = async (
    block: LogColumns,
    from: number,
    to: number,
    refused: (index: number, error: unknown) => void,
  ): Promise<void> => {
    try {
      shipped += await insertLogColumns(options.pool, block, { from, to, skipExisting: true });
    } catch (error) {
      if (isUnreachable(error)) throw error;
      if (to - from === 1) {
        refused(from, error);
        return;
      }
      const middle = (from + to) >>> 1;
      await insertRange(block, from, middle, refused);
      await insertRange(block, middle, to, refused);
    }
  };

  const insertBlock = async (block: Block) => {
    if (block.fresh) {
      block.fresh = false;
      try {
        shipped += await insertLogColumns(options.pool, block, { skipExisting: false });
        return;
      } catch (error) {
        if (isUnreachable(error)) throw error;
        // A refused line, or an id stored after all: the careful path decides.
      }
    }
    let bad = 0;
    let firstError: unknown;
    await insertRange(block, 0, block.ids.length, (index, error) => {
      bad++;
      firstError ??= error;
      countDrop(block.instanceIds[index]!, 1);
    });
    if (bad > 0)
      diagnostic('log lines refused by the database', { lines: bad, error: String(firstError) });
  };

  const reportDrops = async () => {
    if (unreportedDrops.size === 0) return;
    const reports = newBlock(-1);
    for (const [instanceId, n] of unreportedDrops)
      append(
        reports,
        {
          instanceId,
          timestamp: new Date(),
          level: 'warn',
          source: 'system',
          message: `${n} log line(s) were dropped: the agent could not keep them (log queue or disk spool full)`,
          metadata: { dropped_lines: n },
        },
        randomUUID(),
      );
    unreportedDrops.clear();
    // A report the database refuses (its instance was deleted meanwhile) has
    // no one left to read it.
    await insertRange(reports, 0, reports.ids.length, (index, error) =>
      diagnostic('drop report refused by the database', {
        instanceId: reports.instanceIds[index],
        error: String(error),
      }),
    ).catch((error: unknown) => {
      // Unreachable again: put the counts back for the next attempt.
      for (let i = 0; i < reports.ids.length; i++)
        owe(reports.instanceIds[i]!, Number(reports.metadata[i]?.dropped_lines ?? 0));
      throw error;
    });
  };

  /** Set while the pump waits for a slot; push and the timer call it when a block is ready. */
  let wake: (() => void) | undefined;

  /**
   * Writes sealed blocks in push order with up to `concurrency` INSERTs in
   * flight. If the database becomes unreachable, the blocks whose INSERT
   * failed go back to the head of the queue, in order, and the error is thrown.
   */
  const pump = async () => {
    const inFlight = new Set<Promise<void>>();
    const failed: Block[] = [];
    const outcome: { error?: unknown; failed: boolean } = { failed: false };
    for (;;) {
      if (outcome.failed) break;
      const head = blocks[0];
      if (head !== undefined && head !== open && inFlight.size < concurrency) {
        blocks.shift();
        waitingLines -= head.ids.length;
        inFlightLines += head.ids.length;
        const task: Promise<void> = insertBlock(head)
          .catch((error: unknown) => {
            if (!outcome.failed) Object.assign(outcome, { error, failed: true });
            failed.push(head);
            waitingLines += head.ids.length;
          })
          .finally(() => {
            inFlight.delete(task);
            inFlightLines -= head.ids.length;
            releaseWaiters();
          });
        inFlight.add(task);
        continue;
      }
      if (inFlight.size === 0) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        for (const task of inFlight) void task.then(resolve);
      });
      wake = undefined;
    }
    await Promise.all(inFlight);
    if (outcome.failed) {
      failed.sort((a, b) => a.seq - b.seq);
      blocks.unshift(...failed);
      throw outcome.error;
    }
  };

  let writing: Promise<void> | undefined;
  let lastWriteFailed = false;
  const writeOnce = async (force: boolean) => {
    // While the database is down, new batches go behind the spooled ones so order holds.
    if (!databaseReachable && !force && Date.now() < nextAttemptAt) {
      await spoolQueued();
      return;
    }
    try {
      while (segments.length > 0) {
        const segment = segments[0]!;
        await insertBlock(await readSegment(segment.file));
        await rm(segment.file, { force: true });
        segments.shift();
      }
      await pump();
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
      await spoolQueued();
    }
  };

  const write = (force = false): Promise<void> => {
    writing ??= writeOnce(force)
      .then(
        () => {
          lastWriteFailed = false;
        },
        (error: unknown) => {
          lastWriteFailed = true;
          diagnostic('log shipping failed', { error: String(error) });
        },
      )
      .finally(() => {
        writing = undefined;
        // A block sealed while this run was finishing; a failing run waits for the timer.
        if (!closed && !lastWriteFailed && blocks.length > 0 && blocks[0] !== open) void write();
      });
    return writing!;
  };

  /** A block is ready: the running pump takes it, or a new run starts. */
  const kick = () => {
    if (writing) wake?.();
    else void write();
  };

  const timer = setInterval(() => {
    if (queued() > 0 || segments.length > 0 || unreportedDrops.size > 0) {
      open = undefined; // a partly filled batch goes out at least this often
      kick();
    }
  }, flushIntervalMs);
  timer.unref();

  return {
    push(entry) {
      if (closed) return false;
      // A producer that ignores backpressure must not grow memory without
      // bound: past twice the soft limit, lines are dropped, counted and reported.
      if (queued() >= maxQueuedLines * 2) {
        countDrop(entry.instanceId, 1);
        return false;
      }
      let block = open;
      if (block === undefined) {
        block = open = newBlock(nextSeq++);
        blocks.push(block);
      }
      if (entry.id !== undefined) block.fresh = false;
      append(block, entry, entry.id ?? nextId());
      waitingLines++;
      if (block.ids.length >= batchSize) {
        open = undefined;
        kick();
      }
      return queued() < maxQueuedLines;
    },
    onDrain(callback) {
      if (queued() <= resumeAt) callback();
      else drainCallbacks.push(callback);
    },
    async flush() {
      while (writing) await writing;
      open = undefined;
      await write(true);
    },
    stats: () => ({
      queued: queued(),
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
      open = undefined;
      await write(true);
    },
  };
}
