// The shipper's unit of work: log lines held in columns (no object per line),
// one block per INSERT, and the ids the shipper gives its lines.
import { randomBytes } from 'node:crypto';
import type { LogColumns, NewLogEntry } from '../../core/db/logs.js';
import type { JsonObject, LogLevel, LogSource } from '../../core/domain.js';

/** Queued lines in columns; `seq` keeps blocks in push order (-1: not from the queue). */
export interface Block extends LogColumns {
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

export function newBlock(seq: number): Block {
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

export function append(block: Block, entry: NewLogEntry, id: string): void {
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
export function createIdSource(): () => string {
  const r = randomBytes(10).toString('hex');
  const variant = '89ab'[Number.parseInt(r[18]!, 16) & 3]!;
  const prefix = `${r.slice(0, 8)}-${r.slice(8, 12)}-8${r.slice(12, 15)}-${variant}${r.slice(15, 18)}-`;
  let counter = 0;
  return () => prefix + (counter++).toString(16).padStart(12, '0');
}
