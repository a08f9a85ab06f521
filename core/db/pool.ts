// The database pool: slonik on pg, with rows validated against the zod schema
// each query declares (sql.type(schema)), and timestamps parsed to Date.
import '../polyfills.js';
import {
  createPool,
  createTypeParserPreset,
  SchemaValidationError,
  type DatabasePool,
  type Interceptor,
  type QueryResultRow,
} from 'slonik';

export type { DatabasePool };

/**
 * Validates every row of a typed query against its schema. slonik's
 * sql.type() only types rows; without this interceptor nothing checks them.
 */
export const resultParserInterceptor: Interceptor = {
  name: 'minimcp-result-parser',
  transformRowAsync: async (queryContext, query, row) => {
    const parser = queryContext.resultParser;
    if (!parser) return row;
    const result = await parser['~standard'].validate(row);
    if (result.issues) {
      throw new SchemaValidationError(query, row, result.issues);
    }
    return result.value as QueryResultRow;
  },
};

const parseTimestamp = (value: string | null): Date | number | null => {
  if (value === null) return null;
  if (value === 'infinity') return Number.POSITIVE_INFINITY;
  if (value === '-infinity') return Number.NEGATIVE_INFINITY;
  return new Date(value);
};

/** slonik's preset, with timestamps as Date instead of epoch milliseconds. */
const typeParsers = [
  ...createTypeParserPreset().filter((p) => p.name !== 'timestamptz' && p.name !== 'timestamp'),
  { name: 'timestamptz', parse: parseTimestamp },
  { name: 'timestamp', parse: parseTimestamp },
  // COUNT(*) and friends: small enough for a JS number in this domain.
  { name: 'int8', parse: (value: string) => Number.parseInt(value, 10) },
];

export interface PoolOptions {
  /** Maximum open connections. */
  maximumPoolSize?: number;
  /** Milliseconds to wait for a connection before failing. */
  connectionTimeoutMs?: number;
  /** Milliseconds a statement may run. */
  statementTimeoutMs?: number;
  /**
   * Told of every rejection of a pool call (a query, a transaction, a
   * connection), failures to connect included, which slonik's interceptors
   * never see. The caller's own errors thrown inside a transaction arrive too:
   * the listener tells them apart. The call still rejects as before.
   */
  onError?: (error: unknown) => void;
}

/** The pool's calls that return a promise of the database's answer. */
const OBSERVED_CALLS: ReadonlySet<string> = new Set([
  'any',
  'anyFirst',
  'connect',
  'exists',
  'many',
  'manyFirst',
  'maybeOne',
  'maybeOneFirst',
  'one',
  'oneFirst',
  'query',
  'record',
  'stream',
  'transaction',
]);

/** The pool, with each observed call's rejection also handed to `onError`. */
function observeRejections(pool: DatabasePool, onError: (error: unknown) => void): DatabasePool {
  return new Proxy(pool, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !OBSERVED_CALLS.has(property)) return value;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = value.apply(target, args);
        // A branch of its own: the caller's promise rejects exactly as before.
        if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function')
          (result as PromiseLike<unknown>).then(undefined, onError);
        return result;
      };
    },
  });
}

export async function createDatabasePool(
  connectionUri: string,
  options: PoolOptions = {},
): Promise<DatabasePool> {
  const pool = await createPool(connectionUri, {
    interceptors: [resultParserInterceptor],
    typeParsers,
    maximumPoolSize: options.maximumPoolSize ?? 10,
    connectionTimeout: options.connectionTimeoutMs ?? 5_000,
    statementTimeout: options.statementTimeoutMs ?? 30_000,
    captureStackTrace: false,
  });
  // slonik re-emits a failed query's error on the pool's emitter; the query's
  // promise rejects with it anyway. Without a listener EventEmitter throws
  // ERR_UNHANDLED_ERROR instead (seen under jest's VM modules), losing the
  // typed error (a unique violation would become a 500 instead of a 409).
  pool.on('error', () => undefined);
  return options.onError ? observeRejections(pool, options.onError) : pool;
}
