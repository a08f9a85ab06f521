// The one structured logger (pino, JSON lines). Fields that can hold a secret
// are redacted by path wherever they appear, to two levels of nesting.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** Field names whose values are never written. */
const SECRET_FIELDS = [
  'authorization',
  'Authorization',
  'password',
  'password_hash',
  'passwordHash',
  'key',
  'apiKey',
  'api_key',
  'token',
  'access_token',
  'accessToken',
  'admin_token',
  'adminToken',
  'secret',
  'cookie',
  'MINIMCP_ADMIN_TOKEN',
  'MINIMCP_MASTER_KEY',
  'DATABASE_URL',
  'plaintext',
];

export const REDACT_PATHS = SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]);

export function createLogger(
  options: { level?: LogLevelName; name?: string; destination?: DestinationStream } = {},
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name ?? 'minimcp',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Lambda and the local stack both read plain JSON lines; ISO time reads better there.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}
