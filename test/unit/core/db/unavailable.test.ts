// The one database-unavailable classifier: connection-level failures by class
// and code (anywhere in the cause chain) count; data errors and other errors do not.
import { describe, expect, it } from '@jest/globals';
import {
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  ConnectionError,
  IdleTransactionTimeoutError,
  UniqueIntegrityConstraintViolationError,
} from 'slonik';
import { DatabaseUnavailableError, NotFoundError } from '../../../../core/errors.js';
import { isDatabaseUnavailable, toDatabaseUnavailable } from '../../../../core/db/unavailable.js';

const withCode = (code: string, message = 'driver error') =>
  Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it("accepts slonik's connection error classes", () => {
    const pgError = new Error('Connection terminated unexpectedly');
    for (const error of [
      new ConnectionError('could not connect'),
      new BackendTerminatedError(pgError),
      new BackendTerminatedUnexpectedlyError(pgError),
      new IdleTransactionTimeoutError(withCode('25P03')),
      new DatabaseUnavailableError('down'),
    ])
      expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it('accepts SQLSTATE classes 08 and 57P and too_many_connections', () => {
    for (const code of ['08000', '08006', '08P01', '57P01', '57P02', '57P03', '57P05', '53300'])
      expect(isDatabaseUnavailable(withCode(code))).toBe(true);
  });

  it("accepts Node's network error codes", () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE'])
      expect(isDatabaseUnavailable(withCode(code))).toBe(true);
  });

  it("accepts pg's and pg-pool's codeless connection failures", () => {
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
  });

  it('follows the cause chain, also through a cycle', () => {
    const refused = withCode('ECONNREFUSED');
    expect(
      isDatabaseUnavailable(new Error('outer', { cause: new Error('mid', { cause: refused }) })),
    ).toBe(true);
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isDatabaseUnavailable(a)).toBe(false);
  });

  it('rejects data errors, domain errors and non-errors', () => {
    for (const error of [
      withCode('23505'),
      withCode('57014', 'canceling statement due to statement timeout'),
      withCode('42P01', 'Connection terminated is in the message but the code decides'),
      new UniqueIntegrityConstraintViolationError(withCode('23505') as never),
      new NotFoundError('no such instance'),
      new Error('something else'),
      'Connection terminated',
      undefined,
      null,
    ])
      expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('toDatabaseUnavailable', () => {
  it('wraps the failure in DatabaseUnavailableError with it as the cause', () => {
    const refused = withCode('ECONNREFUSED');
    const error = toDatabaseUnavailable(refused);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect(error.code).toBe('DATABASE_UNAVAILABLE');
    expect(error.httpStatus).toBe(503);
    expect(error.cause).toBe(refused);
    expect(error.message).toBe('The database cannot be reached right now; retry later.');
  });

  it('returns a DatabaseUnavailableError as it is', () => {
    const error = new DatabaseUnavailableError('down');
    expect(toDatabaseUnavailable(error)).toBe(error);
  });
});
