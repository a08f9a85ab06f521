// Client sessions on disk, one file per instance (<state>/sessions/<id>.json),
// so that an agent that died and took its children over (agent/child/survivors.ts)
// keeps their clients' sessions too: a session is the client's negotiated
// protocol version, capabilities and resource subscriptions; the child itself
// never knew of it (agent/gateway/session-multiplexer.ts). Written atomically; an
// unreadable file counts as no session (the clients then initialize again).
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { replaceFileSync } from '../../core/replace-file.js';
import type { PersistedSession, SessionStore } from './session-multiplexer.js';

const PersistedSessions = z.array(
  z.object({
    id: z.string().min(1),
    protocolVersion: z.string().min(1),
    clientCapabilities: z.record(z.string(), z.unknown()),
    openedAt: z.number(),
    subscriptions: z.array(z.string()),
  }),
);

export function createFileSessionStore(file: string): SessionStore {
  return {
    load(): PersistedSession[] {
      try {
        return PersistedSessions.parse(JSON.parse(readFileSync(file, 'utf8')));
      } catch {
        return [];
      }
    },
    save(sessions) {
      if (sessions.length === 0) {
        rmSync(file, { force: true });
        return;
      }
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      replaceFileSync(file, JSON.stringify(sessions), { mode: 0o600 });
    },
  };
}
