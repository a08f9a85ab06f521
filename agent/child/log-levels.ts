// The level of a child's log line, where the line says it: JSON logs
// ({"level": "error"} or pino's numeric levels) and textual prefixes
// ("ERROR:", "[warn]", "DEBUG -"); `info` otherwise.
import type { LogLevel } from '../../core/domain.js';

const WORDS: Record<string, LogLevel> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  notice: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  err: 'error',
  fatal: 'error',
  critical: 'error',
  crit: 'error',
  panic: 'error',
};

const NAMES = 'trace|debug|info|notice|warn|warning|error|err|fatal|critical|crit|panic';
/** "[warn] x", "(error) x", "ERROR: x", "warn - x", "INFO | x". */
const PREFIX = new RegExp(`^\\s*(?:[[(]\\s*(${NAMES})\\s*[\\])]|(${NAMES})\\s*[:|-])`, 'i');

function fromPinoNumber(level: number): LogLevel {
  if (level >= 50) return 'error';
  if (level >= 40) return 'warn';
  if (level >= 30) return 'info';
  return 'debug';
}

export function parseLogLevel(line: string): LogLevel {
  const trimmed = line.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      const parsed = JSON.parse(trimmed) as Record<string, unknown>;
      const value = parsed.level ?? parsed.severity ?? parsed.lvl;
      if (typeof value === 'number') return fromPinoNumber(value);
      if (typeof value === 'string') return WORDS[value.toLowerCase()] ?? 'info';
    } catch {
      // Not JSON after all: fall through to the prefix rules.
    }
  }
  const match = PREFIX.exec(trimmed);
  const word = match?.[1] ?? match?.[2];
  return word ? (WORDS[word.toLowerCase()] ?? 'info') : 'info';
}
