// Printing results: JSON for scripts (--json), aligned text for people.
// Results go to stdout; progress and hints go to stderr.
import type { CliContext } from './context.js';

export function printResult(
  ctx: CliContext,
  json: boolean,
  value: unknown,
  human: () => string,
): void {
  ctx.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : withNewline(human()));
}

export function note(ctx: CliContext, line: string): void {
  ctx.stderr.write(withNewline(line));
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : text + '\n';
}

/** Columns padded to their widest cell; an empty list says so. */
export function table(headers: string[], rows: string[][], empty = '(none)'): string {
  if (rows.length === 0) return empty;
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

/** "in 59 min", "3 h ago": enough for a listing; --json has the timestamp. */
export function relativeTime(iso: string | null, now = Date.now()): string {
  if (iso === null) return '-';
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  const span =
    abs < 90
      ? `${abs} s`
      : abs < 5400
        ? `${Math.round(abs / 60)} min`
        : abs < 172_800
          ? `${Math.round(abs / 3600)} h`
          : `${Math.round(abs / 86_400)} d`;
  return seconds >= 0 ? `in ${span}` : `${span} ago`;
}
