// The shipper's INSERTs into mcp_logs: a block at once, or bisected around the
// lines the database refuses; and the per-instance reports of dropped lines.
// A database that cannot be reached surfaces as DatabaseUnavailableError.
import { randomUUID } from 'node:crypto';
import { insertLogColumns, type LogColumns } from '../../core/db/logs.js';
import { isDatabaseUnavailable, toDatabaseUnavailable } from '../../core/db/unavailable.js';
import { append, newBlock, type Block } from './log-blocks.js';
import { countDrop, countShipped, oweDropReport, type ShipperState } from './log-shipper-state.js';

/**
 * Inserts lines from..to of a block, skipping ids already stored. A data
 * error (a line the database refuses) splits the range in halves until the
 * bad lines are found, so one bad line costs a few statements and cannot
 * block the rest. Unreachable-database errors propagate: the caller keeps
 * the whole block, and replaying it is harmless (ON CONFLICT id).
 */
async function insertRange(
  state: ShipperState,
  block: LogColumns,
  from: number,
  to: number,
  refused: (index: number, error: unknown) => void,
): Promise<void> {
  try {
    countShipped(
      state,
      await insertLogColumns(state.settings.pool, block, { from, to, skipExisting: true }),
    );
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw toDatabaseUnavailable(error);
    if (to - from === 1) {
      refused(from, error);
      return;
    }
    const middle = (from + to) >>> 1;
    await insertRange(state, block, from, middle, refused);
    await insertRange(state, block, middle, to, refused);
  }
}

export async function insertBlock(state: ShipperState, block: Block): Promise<void> {
  if (block.fresh) {
    block.fresh = false;
    try {
      countShipped(
        state,
        await insertLogColumns(state.settings.pool, block, { skipExisting: false }),
      );
      return;
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw toDatabaseUnavailable(error);
      // A refused line, or an id stored after all: the careful path decides.
    }
  }
  let bad = 0;
  let firstError: unknown;
  await insertRange(state, block, 0, block.ids.length, (index, error) => {
    bad++;
    firstError ??= error;
    countDrop(state, block.instanceIds[index]!, 1);
  });
  if (bad > 0)
    state.settings.diagnostic('log lines refused by the database', {
      lines: bad,
      error: String(firstError),
    });
}

/** One warning line per instance that lost lines, saying how many. */
export async function reportDrops(state: ShipperState): Promise<void> {
  if (state.unreportedDrops.size === 0) return;
  const reports = newBlock(-1);
  for (const [instanceId, n] of state.unreportedDrops)
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
  state.unreportedDrops.clear();
  // A report the database refuses (its instance was deleted meanwhile) has
  // no one left to read it.
  await insertRange(state, reports, 0, reports.ids.length, (index, error) =>
    state.settings.diagnostic('drop report refused by the database', {
      instanceId: reports.instanceIds[index],
      error: String(error),
    }),
  ).catch((error: unknown) => {
    // Unreachable again: put the counts back for the next attempt.
    for (let i = 0; i < reports.ids.length; i++)
      oweDropReport(
        state,
        reports.instanceIds[i]!,
        Number(reports.metadata[i]?.dropped_lines ?? 0),
      );
    throw error;
  });
}
