// The domain vocabulary of the schema, as literal unions with their zod forms.
import { z } from 'zod';

export const INSTANCE_STATUSES = [
  'pending',
  'running',
  'expired',
  'disconnected',
  'error',
] as const;
export const InstanceStatus = z.enum(INSTANCE_STATUSES);
export type InstanceStatus = z.infer<typeof InstanceStatus>;

export const NODE_STATUSES = ['active', 'draining', 'down'] as const;
export const NodeStatus = z.enum(NODE_STATUSES);
export type NodeStatus = z.infer<typeof NodeStatus>;

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LogLevel = z.enum(LOG_LEVELS);
export type LogLevel = z.infer<typeof LogLevel>;

/**
 * Where a log line came from: `process` the child's output, `system` the agent,
 * `access` the gateway's record of one MCP request. `api` is the schema
 * document's third value; nothing writes it now (access records were written as
 * `api` before, and older rows keep that label).
 */
export const LogSource = z.enum(['process', 'system', 'api', 'access']);
export type LogSource = z.infer<typeof LogSource>;

export const EVENT_TYPES = [
  'created',
  'started',
  'restarted',
  /** A new agent took over the instance's running process after an agent restart. */
  'reattached',
  'restored',
  'extended',
  'token_rotated',
  'expired',
  'deleted',
  'disconnected',
  'error',
  'moved',
] as const;
export const EventType = z.enum(EVENT_TYPES);
export type EventType = z.infer<typeof EventType>;

export const UserRole = z.enum(['user', 'admin']);
export type UserRole = z.infer<typeof UserRole>;

export const KeyProviderName = z.enum(['aws-kms', 'local']);
export type KeyProviderName = z.infer<typeof KeyProviderName>;

/** JSON objects as stored in JSONB columns. */
export const JsonObject = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof JsonObject>;

/** What happened to a user's API key (api_key_events.event_type). */
export const KEY_EVENT_TYPES = ['stored', 'disabled', 'enabled', 'deleted'] as const;
export const KeyEventType = z.enum(KEY_EVENT_TYPES);
export type KeyEventType = z.infer<typeof KeyEventType>;
