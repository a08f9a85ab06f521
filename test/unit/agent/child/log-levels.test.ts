// Levels are read from a child's line where the line says one.
import { describe, expect, it } from '@jest/globals';
import { parseLogLevel } from '../../../../agent/child/log-levels.js';

describe('log levels of child lines', () => {
  it.each([
    ['ERROR: upstream refused', 'error'],
    ['[warn] slow answer', 'warn'],
    ['DEBUG - tick', 'debug'],
    ['fatal: cannot start', 'error'],
    ['{"level":"warn","msg":"x"}', 'warn'],
    ['{"level":50,"msg":"pino error"}', 'error'],
    ['{"severity":"DEBUG"}', 'debug'],
    ['{"level":30}', 'info'],
    ['plain line', 'info'],
    ['{not json', 'info'],
    ['errors were not found', 'info'],
  ])('reads %j as %s', (line, level) => {
    expect(parseLogLevel(line)).toBe(level);
  });
});
