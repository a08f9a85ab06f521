// Ships log lines to mcp_logs: one writer per agent with up to a few multi-row
// INSERTs in flight on separate connections, a bounded in-memory queue of
// columnar blocks with backpressure, and a bounded on-disk spool that holds
// lines (in order) while the database is unreachable. Every line carries an id
// chosen here, so a batch retried after an ambiguous failure lands once.
// Lines that cannot be kept are counted and reported per instance, never
// silently lost.
// This module is the shipper's face (push, backpressure, flush, close); the
// blocks, the spool, the INSERTs and the write loop have modules of their own.
import type { DatabasePool } from 'slonik';
import type { NewLogEntry } from '../../core/db/logs.js';
import { append, createIdSource, newBlock } from './log-blocks.js';
import {
  countDrop,
  createShipperState,
  queuedLines,
  type LogShipperMetrics,
  type ShipperState,
} from './log-shipper-state.js';

export type { LogShipperMetrics };
import { openLogSpool } from './log-spool.js';
import { kick, writeAll } from './log-writer.js';

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
  metrics?: LogShipperMetrics;
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

/** Queues a line in the open block (sealing it when full); false: pause the producer. */
function push(state: ShipperState, entry: NewLogEntry, nextId: () => string): boolean {
  const { maxQueuedLines, batchSize } = state.settings;
  if (state.closed) return false;
  // A producer that ignores backpressure must not grow memory without
  // bound: past twice the soft limit, lines are dropped, counted and reported.
  if (queuedLines(state) >= maxQueuedLines * 2) {
    countDrop(state, entry.instanceId, 1);
    return false;
  }
  let block = state.open;
  if (block === undefined) {
    block = state.open = newBlock(state.nextSeq++);
    state.blocks.push(block);
  }
  if (entry.id !== undefined) block.fresh = false;
  append(block, entry, entry.id ?? nextId());
  state.waitingLines++;
  if (block.ids.length >= batchSize) {
    state.open = undefined;
    kick(state);
  }
  return queuedLines(state) < maxQueuedLines;
}

export async function createLogShipper(options: LogShipperOptions): Promise<LogShipper> {
  const maxQueuedLines = options.maxQueuedLines ?? 50_000;
  const spool = await openLogSpool(options.spoolDir, options.maxSpoolBytes ?? 256 * 1024 * 1024);
  const state = createShipperState(
    {
      pool: options.pool,
      batchSize: options.batchSize ?? 10_000,
      concurrency: Math.max(1, options.maxConcurrentInserts ?? 2),
      maxQueuedLines,
      // Hysteresis: producers resume once half the bound is free, not one line at a time.
      resumeAt: Math.floor(maxQueuedLines / 2),
      baseRetryDelayMs: options.retryDelayMs ?? 250,
      diagnostic: options.onDiagnostic ?? (() => undefined),
      metrics: options.metrics,
    },
    spool,
  );
  const nextId = createIdSource();

  const timer = setInterval(() => {
    if (queuedLines(state) > 0 || spool.size > 0 || state.unreportedDrops.size > 0) {
      state.open = undefined; // a partly filled batch goes out at least this often
      kick(state);
    }
  }, options.flushIntervalMs ?? 250);
  timer.unref();

  return {
    push: (entry) => push(state, entry, nextId),
    onDrain(callback) {
      if (queuedLines(state) <= state.settings.resumeAt) callback();
      else state.drainCallbacks.push(callback);
    },
    flush: () => writeAll(state),
    stats: () => ({
      queued: queuedLines(state),
      shipped: state.shipped,
      spooledLines: spool.lines(),
      spoolBytes: spool.bytes(),
      dropped: state.dropped,
      databaseReachable: state.databaseReachable,
    }),
    async close() {
      if (state.closed) return;
      state.closed = true;
      clearInterval(timer);
      await writeAll(state);
    },
  };
}
