// A user's data as one JSON document (GET /v1/me/export): the account, the
// keys' and tokens' metadata (never an envelope, a hash or a token), the
// instances, their events, the account's events and the recent log lines.
// Every section is bounded; `truncated` says where the bound cut.
import type { DatabasePool } from 'slonik';
import { listKeyUsage } from '../../core/db/api-keys.js';
import {
  listEventsForExport,
  listInstancesForExport,
  listRecentLogsForExport,
  listTokensForExport,
} from './db/account-data.js';
import { listAccountEvents } from './db/account-events.js';
import { asUser } from './db/user-context.js';
import { findUserById } from './db/users.js';
import { NotFoundError } from '../../core/errors.js';

export const EXPORT_LIMITS = {
  tokens: 1_000,
  instances: 1_000,
  events: 5_000,
  accountEvents: 1_000,
  logs: 2_000,
  /** Log lines from this many days back. */
  logDays: 7,
} as const;

const iso = (date: Date) => date.toISOString();
const isoOrNull = (date: Date | null) => (date ? date.toISOString() : null);

/** `rows` cut to `limit`, and whether there were more (queries ask for limit + 1). */
function bounded<T>(rows: readonly T[], limit: number): { items: T[]; truncated: boolean } {
  return { items: rows.slice(0, limit), truncated: rows.length > limit };
}

async function readSections(pool: DatabasePool, userId: string, now: Date) {
  const since = new Date(now.getTime() - EXPORT_LIMITS.logDays * 86_400_000);
  return asUser(pool, userId, async (tx) => ({
    user: await findUserById(tx, userId),
    keys: await listKeyUsage(tx, userId),
    tokens: await listTokensForExport(tx, userId, EXPORT_LIMITS.tokens + 1),
    instances: await listInstancesForExport(tx, userId, EXPORT_LIMITS.instances + 1),
    events: await listEventsForExport(tx, userId, EXPORT_LIMITS.events + 1),
    accountEvents: await listAccountEvents(tx, userId, EXPORT_LIMITS.accountEvents + 1),
    logs: await listRecentLogsForExport(tx, userId, since, EXPORT_LIMITS.logs + 1),
  }));
}

export async function exportAccount(pool: DatabasePool, userId: string, now = new Date()) {
  const s = await readSections(pool, userId, now);
  if (!s.user) throw new NotFoundError(`user ${userId} not found`, { userId });
  const tokens = bounded(s.tokens, EXPORT_LIMITS.tokens);
  const instances = bounded(s.instances, EXPORT_LIMITS.instances);
  const events = bounded(s.events, EXPORT_LIMITS.events);
  const accountEvents = bounded(s.accountEvents, EXPORT_LIMITS.accountEvents);
  const logs = bounded(s.logs, EXPORT_LIMITS.logs);
  return {
    exported_at: iso(now),
    account: {
      id: s.user.id,
      email: s.user.email,
      name: s.user.name,
      role: s.user.role,
      email_verified: s.user.email_verified === true,
      created_at: iso(s.user.created_at),
      updated_at: iso(s.user.updated_at),
    },
    keys: s.keys.map((k) => ({
      type: k.type,
      key_hint: k.key_hint,
      active: k.is_active === true,
      created_at: iso(k.created_at),
      updated_at: iso(k.updated_at),
      expires_at: isoOrNull(k.expires_at),
    })),
    tokens: tokens.items.map((t) => ({
      id: t.id,
      name: t.name,
      prefix: t.token_prefix,
      created_at: iso(t.created_at),
      last_used_at: isoOrNull(t.last_used_at),
      expires_at: isoOrNull(t.expires_at),
      revoked_at: isoOrNull(t.revoked_at),
    })),
    instances: instances.items.map((i) => ({
      id: i.id,
      type: i.type,
      status: i.status,
      access_url: i.access_url,
      token_prefix: i.access_token_prefix,
      config: i.config ?? {},
      expires_at: iso(i.expires_at),
      created_at: iso(i.created_at),
      deleted_at: isoOrNull(i.deleted_at),
    })),
    events: events.items.map((e) => ({ ...e, data: e.data ?? {}, created_at: iso(e.created_at) })),
    account_events: accountEvents.items.map((e) => ({
      type: e.event_type,
      actor: e.actor,
      actor_user_id: e.actor_user_id,
      data: e.event_data,
      created_at: iso(e.created_at),
    })),
    logs: logs.items.map((l) => ({ ...l, timestamp: iso(l.timestamp) })),
    limits: EXPORT_LIMITS,
    truncated: {
      tokens: tokens.truncated,
      instances: instances.truncated,
      events: events.truncated,
      account_events: accountEvents.truncated,
      logs: logs.truncated,
    },
  };
}

export type AccountExport = Awaited<ReturnType<typeof exportAccount>>;
