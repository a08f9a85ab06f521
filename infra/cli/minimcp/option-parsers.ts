// Parsers of option values (commander calls them; a bad value is a usage
// error, exit 2): --config k=v / k:=json, --minutes N, --since 10m or a time.
import { InvalidArgumentError } from 'commander';

export type ConfigPairs = Record<string, unknown>;

/**
 * One `--config` value added to those before it: `key=value` sets a string,
 * `key:=json` a JSON value (number, boolean, array, object). A key given twice
 * is refused rather than silently overwritten.
 */
export function parseConfigPair(raw: string, previous: ConfigPairs = {}): ConfigPairs {
  const match = /^([^=:]+?)(:?=)(.*)$/s.exec(raw);
  if (!match) {
    throw new InvalidArgumentError(`expected key=value (a string) or key:=json, got "${raw}"`);
  }
  const [, rawKey = '', operator, text = ''] = match;
  const key = rawKey.trim();
  if (key.length === 0) throw new InvalidArgumentError(`the key is empty in "${raw}"`);
  if (Object.hasOwn(previous, key)) throw new InvalidArgumentError(`"${key}" is given twice`);
  let value: unknown = text;
  if (operator === ':=') {
    try {
      value = JSON.parse(text);
    } catch {
      // The JSON error's own text says little more than this.
      throw new InvalidArgumentError(`the value of ${key}:= is not JSON: ${text}`);
    }
  }
  return { ...previous, [key]: value };
}

export function parsePositiveInt(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new InvalidArgumentError(`expected a whole number of 1 or more, got "${raw}"`);
  return Number(raw);
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `10m`, `2h`, `1d` before now, or an ISO 8601 time; returned as ISO 8601 (UTC). */
export function parseSince(raw: string, now = Date.now()): string {
  const relative = /^(\d+)([smhd])$/.exec(raw);
  if (relative)
    return new Date(now - Number(relative[1]) * (UNIT_MS[relative[2] ?? 's'] ?? 0)).toISOString();
  const time = Date.parse(raw);
  if (Number.isNaN(time))
    throw new InvalidArgumentError(
      `expected a duration such as 10m or 2h, or an ISO 8601 time, got "${raw}"`,
    );
  return new Date(time).toISOString();
}
