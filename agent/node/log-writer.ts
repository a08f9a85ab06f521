// The shipper's write loop: sealed blocks go to the database in push order
// with a few INSERTs in flight; while the database is unreachable they go to
// the spool behind what is there, and the spool is replayed first once it is back.
import { isDatabaseUnavailable } from '../../core/db/unavailable.js';
import type { Block } from './log-blocks.js';
import { insertBlock, reportDrops } from './log-inserts.js';
import { countDrop, releaseWaiters, type ShipperState } from './log-shipper-state.js';

const MAX_RETRY_DELAY_MS = 5000;

/** Everything queued goes to the spool, behind what is there already, in order. */
async function spoolQueued(state: ShipperState): Promise<void> {
  while (state.blocks.length > 0) {
    const block = state.blocks.shift()!;
    if (block === state.open) state.open = undefined; // later pushes start a new block
    state.waitingLines -= block.ids.length;
    if (await state.spool.write(block)) {
      state.settings.metrics?.spooled(block.ids.length);
    } else {
      for (const instanceId of block.instanceIds) countDrop(state, instanceId, 1);
      state.settings.diagnostic('log spool full, batch dropped', { lines: block.ids.length });
    }
  }
  releaseWaiters(state);
}

/**
 * Writes sealed blocks in push order with up to `concurrency` INSERTs in
 * flight. If the database becomes unreachable, the blocks whose INSERT
 * failed go back to the head of the queue, in order, and the error is thrown.
 */
async function pump(state: ShipperState): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const failed: Block[] = [];
  const outcome: { error?: unknown; failed: boolean } = { failed: false };
  for (;;) {
    if (outcome.failed) break;
    const head = state.blocks[0];
    if (head !== undefined && head !== state.open && inFlight.size < state.settings.concurrency) {
      state.blocks.shift();
      state.waitingLines -= head.ids.length;
      state.inFlightLines += head.ids.length;
      const task: Promise<void> = insertBlock(state, head)
        .catch((error: unknown) => {
          if (!outcome.failed) Object.assign(outcome, { error, failed: true });
          failed.push(head);
          state.waitingLines += head.ids.length;
        })
        .finally(() => {
          inFlight.delete(task);
          state.inFlightLines -= head.ids.length;
          releaseWaiters(state);
        });
      inFlight.add(task);
      continue;
    }
    if (inFlight.size === 0) break;
    await new Promise<void>((resolve) => {
      state.wake = resolve;
      for (const task of inFlight) void task.then(resolve);
    });
    state.wake = undefined;
  }
  await Promise.all(inFlight);
  if (outcome.failed) {
    failed.sort((a, b) => a.seq - b.seq);
    state.blocks.unshift(...failed);
    throw outcome.error;
  }
}

async function writeOnce(state: ShipperState, force: boolean): Promise<void> {
  const { diagnostic, baseRetryDelayMs } = state.settings;
  // While the database is down, new batches go behind the spooled ones so order holds.
  if (!state.databaseReachable && !force && Date.now() < state.nextAttemptAt) {
    await spoolQueued(state);
    return;
  }
  try {
    await state.spool.replay((block) => insertBlock(state, block));
    await pump(state);
    await reportDrops(state);
    if (!state.databaseReachable) diagnostic('database reachable again; log spool replayed');
    state.databaseReachable = true;
    state.retryDelayMs = baseRetryDelayMs;
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    if (state.databaseReachable) diagnostic('database unreachable; spooling logs to disk');
    state.databaseReachable = false;
    state.nextAttemptAt = Date.now() + state.retryDelayMs;
    state.retryDelayMs = Math.min(state.retryDelayMs * 2, MAX_RETRY_DELAY_MS);
    await spoolQueued(state);
  }
}

/** One write run at a time; `force` tries the database even inside the retry delay. */
export function write(state: ShipperState, force = false): Promise<void> {
  state.writing ??= writeOnce(state, force)
    .then(
      () => {
        state.lastWriteFailed = false;
      },
      (error: unknown) => {
        state.lastWriteFailed = true;
        state.settings.diagnostic('log shipping failed', { error: String(error) });
      },
    )
    .finally(() => {
      state.writing = undefined;
      // A block sealed while this run was finishing; a failing run waits for the timer.
      const sealed = state.blocks.length > 0 && state.blocks[0] !== state.open;
      if (!state.closed && !state.lastWriteFailed && sealed) void write(state);
    });
  return state.writing;
}

/** A block is ready: the running pump takes it, or a new run starts. */
export function kick(state: ShipperState): void {
  if (state.writing) state.wake?.();
  else void write(state);
}

/** Waits for the run in progress, then writes everything queued, the open block included. */
export async function writeAll(state: ShipperState): Promise<void> {
  while (state.writing) await state.writing;
  state.open = undefined;
  await write(state, true);
}
