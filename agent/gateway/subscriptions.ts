// Resource subscriptions across sessions: the child holds one subscription per
// URI however many sessions asked for it, so it hears subscribe from the first
// session and unsubscribe from the last, and every URI again after a restart.
import type { MultiplexerState, Session } from './multiplexer-state.js';
import { persistSessions } from './multiplexer-state.js';
import type { StdioConnection } from '../child/stdio-connection.js';

/** How long the agent waits on its own subscribe or unsubscribe. */
const QUIET_REQUEST_TIMEOUT_MS = 30_000;

export function subscribe(state: MultiplexerState, session: Session, uri: unknown): void {
  if (typeof uri !== 'string' || session.subscriptions.has(uri)) return;
  session.subscriptions.add(uri);
  state.subscribers.set(uri, (state.subscribers.get(uri) ?? 0) + 1);
  persistSessions(state);
}

/** Drops one session's subscription; the child hears of it only from the last one. */
export function unsubscribe(
  state: MultiplexerState,
  session: Session,
  uri: unknown,
): 'last' | 'others-remain' | 'unknown' {
  if (typeof uri !== 'string' || !session.subscriptions.delete(uri)) return 'unknown';
  persistSessions(state);
  const remaining = (state.subscribers.get(uri) ?? 1) - 1;
  if (remaining > 0) {
    state.subscribers.set(uri, remaining);
    return 'others-remain';
  }
  state.subscribers.delete(uri);
  return 'last';
}

/** An ending session's subscriptions: the child is told of those no other session holds. */
export function releaseSubscriptions(state: MultiplexerState, session: Session): void {
  for (const uri of [...session.subscriptions])
    if (unsubscribe(state, session, uri) === 'last' && state.bound !== undefined)
      requestQuietly(state, state.bound, 'resources/unsubscribe', { uri });
}

/** A new child knows nothing of the old one's subscriptions. */
export function resubscribeAll(state: MultiplexerState, connection: StdioConnection): void {
  for (const uri of state.subscribers.keys())
    requestQuietly(state, connection, 'resources/subscribe', { uri });
}

/**
 * A request of the agent's own whose answer does not matter (re-subscribing
 * after a restart, unsubscribing after the last session left): a failure only
 * means the child no longer needs it, so it is logged and not passed on.
 */
function requestQuietly(
  state: MultiplexerState,
  connection: StdioConnection,
  method: string,
  params: { uri: string },
): void {
  connection.request(method, params, QUIET_REQUEST_TIMEOUT_MS).catch((err: unknown) => {
    state.logger?.warn({ step: method, uri: params.uri, err }, `${method} at the child failed`);
  });
}
