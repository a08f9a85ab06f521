// Looks for a secret wherever it could have leaked: every row of every table,
// files on disk, captured log lines, answers. A secret is searched as is and
// in the encodings a careless writer would use (base64 and base64url at any
// byte alignment, percent-encoding, hex).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

export interface SecretForm {
  /** Which encoding, for the failure message. */
  label: string;
  text: string;
}

/**
 * The base64 characters that encode `secret` wherever it sits in a longer
 * text: for each of the three byte alignments, the encoding of the secret
 * minus the first and last 4-character groups (those mix in neighbouring
 * bytes or padding).
 */
function base64Fragments(secret: Buffer, alphabet: 'base64' | 'base64url'): string[] {
  const fragments: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), secret]).toString(alphabet);
    const stable = encoded.replace(/=+$/, '').slice(offset === 0 ? 0 : 4, -4);
    if (stable.length >= 16) fragments.push(stable);
  }
  return fragments;
}

/** The secret and its common encodings, each long enough never to match by chance. */
export function secretForms(secret: string): SecretForm[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms: SecretForm[] = [
    { label: 'clear', text: secret },
    { label: 'percent-encoded', text: encodeURIComponent(secret) },
    { label: 'hex', text: bytes.toString('hex') },
    ...base64Fragments(bytes, 'base64').map((text) => ({ label: 'base64', text })),
    ...base64Fragments(bytes, 'base64url').map((text) => ({ label: 'base64url', text })),
  ];
  const seen = new Set<string>();
  return forms.filter((form) => !seen.has(form.text) && seen.add(form.text));
}

export interface Leak {
  where: string;
  form: string;
  /** A short window around the hit, with the secret itself masked. */
  context: string;
}

/** Every place in `texts` where a form of the secret occurs. */
export function findLeaks(
  forms: readonly SecretForm[],
  texts: Iterable<{ where: string; text: string }>,
): Leak[] {
  const leaks: Leak[] = [];
  for (const { where, text } of texts) {
    for (const form of forms) {
      const at = text.indexOf(form.text);
      if (at === -1) continue;
      const window = text.slice(Math.max(0, at - 60), at + form.text.length + 60);
      leaks.push({ where, form: form.label, context: window.replaceAll(form.text, '<SECRET>') });
    }
  }
  return leaks;
}

const TableName = z.object({ name: z.string() });
const RowText = z.object({ row: z.string() });

/**
 * Every row of every table of the public schema as JSON text (each column,
 * whatever its type; bytea shows as hex), through a pool that bypasses RLS.
 * Partitions are read through their parent table.
 */
export async function dumpDatabase(
  owner: DatabasePool,
): Promise<{ where: string; text: string }[]> {
  const tables = await owner.any(sql.type(TableName)`
    SELECT c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    ORDER BY c.relname`);
  const out: { where: string; text: string }[] = [];
  for (const { name } of tables) {
    const rows = await owner.any(
      sql.type(RowText)`SELECT row_to_json(t)::text AS row FROM ${sql.identifier([name])} t`,
    );
    rows.forEach(({ row }, i) => out.push({ where: `table ${name} row ${i}`, text: row }));
  }
  return out;
}

/** The text of every file under `dir` (binary files read as latin1, so bytes still match). */
export async function readTree(dir: string): Promise<{ where: string; text: string }[]> {
  const out: { where: string; text: string }[] = [];
  const walk = async (folder: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      return; // removed while we walked: nothing to read there
    }
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile())
        out.push({ where: `file ${full}`, text: await readFile(full, 'latin1') });
    }
  };
  await walk(dir);
  return out;
}
