// What one log shipper holds: its settings, the in-memory queue of blocks with
// its line counts, the drop accounting per instance, and where the write loop
// stands. The shipper's parts (inserts, writer) are functions over it.
import type { DatabasePool } from 'slonik';
import type { Block } from './log-blocks.js';
import type { LogSpool } from './log-spool.js';

export interface ShipperSettings {
  readonly pool: DatabasePool;
  readonly batchSize: number;
  /** INSERTs in flight at once. */
  readonly concurrency: number;
  readonly maxQueuedLines: number;
  /** Producers resume once the queue is down to this (hysteresis: half the bound). */
  readonly resumeAt: number;
  readonly baseRetryDelayMs: number;
  readonly diagnostic: (message: string, context?: Record<string, unknown>) => void;
  readonly metrics: LogShipperMetrics | undefined;
}

/** Lines counted as they are stored, spooled to disk, or dropped (agent/node/metrics.ts). */
export interface LogShipperMetrics {
  shipped(lines: number): void;
  spooled(lines: number): void;
  dropped(lines: number): void;
}

export interface ShipperState {
  readonly settings: ShipperSettings;
  readonly spool: LogSpool;
  /** Blocks waiting to be written, oldest first; `open` (the last) is still filling. */
  readonly blocks: Block[];
  open: Block | undefined;
  nextSeq: number;
  waitingLines: number;
  inFlightLines: number;
  readonly drainCallbacks: Array<() => void>;
  shipped: number;
  dropped: number;
  /** Drops not yet reported to the database, per instance. */
  readonly unreportedDrops: Map<string, number>;
  databaseReachable: boolean;
  retryDelayMs: number;
  nextAttemptAt: number;
  closed: boolean;
  /** Set while the pump waits for a slot; push and the timer call it when a block is ready. */
  wake: (() => void) | undefined;
  /** The write run in progress, if any. */
  writing: Promise<void> | undefined;
  lastWriteFailed: boolean;
}

export function createShipperState(settings: ShipperSettings, spool: LogSpool): ShipperState {
  return {
    settings,
    spool,
    blocks: [],
    open: undefined,
    nextSeq: 0,
    waitingLines: 0,
    inFlightLines: 0,
    drainCallbacks: [],
    shipped: 0,
    dropped: 0,
    unreportedDrops: new Map(),
    databaseReachable: true,
    retryDelayMs: settings.baseRetryDelayMs,
    nextAttemptAt: 0,
    closed: false,
    wake: undefined,
    writing: undefined,
    lastWriteFailed: false,
  };
}

/** Lines not stored yet: waiting, or in an INSERT in flight. */
export function queuedLines(state: ShipperState): number {
  return state.waitingLines + state.inFlightLines;
}

/** Producers paused on backpressure resume once the queue is down to half its bound. */
export function releaseWaiters(state: ShipperState): void {
  if (queuedLines(state) > state.settings.resumeAt) return;
  for (const callback of state.drainCallbacks.splice(0)) callback();
}

/** Lines of an instance dropped and not reported yet (a report that failed puts its count back). */
export function oweDropReport(state: ShipperState, instanceId: string, lines: number): void {
  state.unreportedDrops.set(instanceId, (state.unreportedDrops.get(instanceId) ?? 0) + lines);
}

export function countDrop(state: ShipperState, instanceId: string, lines: number): void {
  state.dropped += lines;
  state.settings.metrics?.dropped(lines);
  oweDropReport(state, instanceId, lines);
}

export function countShipped(state: ShipperState, lines: number): void {
  state.shipped += lines;
  state.settings.metrics?.shipped(lines);
}
