// The logger never writes a secret field, at any of the levels we redact.
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../../../core/logger.js';

function capture() {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (l: string) => void lines.push(l) },
  });
  return { logger, lines };
}

describe('the logger', () => {
  it('writes JSON lines with an ISO time and a level label', () => {
    const { logger, lines } = capture();
    logger.info({ requestId: 'r1' }, 'hello');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'info', msg: 'hello', requestId: 'r1', name: 'minimcp' });
    expect(typeof line.time).toBe('string');
  });

  it('redacts authorization, password, key and token fields at the top and nested levels', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        password: 'hunter2-secret',
        token: 'mmu_secret-token',
        req: { headers: { authorization: 'Bearer mmu_secret-token' } },
        body: { key: 'ghp_secret-key', access_token: 'mcp_secret', name: 'visible' },
        MINIMCP_ADMIN_TOKEN: 'admin-secret',
      },
      'with secrets',
    );
    const text = lines.join('');
    expect(text).not.toMatch(/hunter2|secret-token|secret-key|mcp_secret|admin-secret/);
    expect(text).toContain('visible');
    expect(text).toContain('[redacted]');
  });

  it('honours the level', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (l: string) => void lines.push(l) },
    });
    logger.info('dropped');
    logger.warn('kept');
    expect(lines).toHaveLength(1);
  });
});
