// Asserts that a statement was refused by a named constraint (slonik's typed
// integrity errors carry the constraint's name).
import { expect } from '@jest/globals';
import { IntegrityConstraintViolationError } from 'slonik';

/**
 * Under jest's VM modules an error slonik re-emits on a connection emitter can
 * surface wrapped in ERR_UNHANDLED_ERROR (plain Node gives the typed error);
 * the original is its `context`.
 */
function unwrap(error: unknown): unknown {
  const wrapped = error as { code?: string; context?: unknown } | undefined;
  return wrapped?.code === 'ERR_UNHANDLED_ERROR' ? wrapped.context : error;
}

export async function violates(statement: Promise<unknown>, constraint: RegExp): Promise<void> {
  const error = unwrap(
    await statement.then(
      () => undefined,
      (reason: unknown) => reason,
    ),
  );
  expect(error).toBeInstanceOf(IntegrityConstraintViolationError);
  expect((error as IntegrityConstraintViolationError).constraint ?? '').toMatch(constraint);
}
