// Opaque cursors for keyset pagination (newest first): base64url of which list
// it belongs to, the sort timestamp as text (microseconds kept) and the row id.
import { z } from 'zod';

export type CursorKind = 'instances' | 'events' | 'logs';

/** Where the previous page ended: continue strictly after (older than) this row. */
export interface CursorPosition {
  /** ISO 8601 timestamp, as precise as the column. */
  at: string;
  id: string;
}

const CursorBody = z.object({
  k: z.enum(['instances', 'events', 'logs']),
  t: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/),
  i: z.uuid(),
});

export function encodeCursor(kind: CursorKind, position: CursorPosition): string {
  const body: z.infer<typeof CursorBody> = { k: kind, t: position.at, i: position.id };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

export type CursorResult = { ok: true; value: CursorPosition } | { ok: false; message: string };

/** Denies anything that is not a cursor this code issued for the same kind of list. */
export function decodeCursor(kind: CursorKind, cursor: string): CursorResult {
  const invalid: CursorResult = {
    ok: false,
    message: `cursor is not valid for this list: pass the next_cursor of a previous page unchanged`,
  };
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(cursor)) return invalid;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    // Not JSON: the cursor was altered or made up; the answer is the same.
    return invalid;
  }
  const parsed = CursorBody.safeParse(json);
  if (!parsed.success || parsed.data.k !== kind) return invalid;
  return { ok: true, value: { at: parsed.data.t, id: parsed.data.i } };
}
