// Parsing `Authorization: Bearer <token>` (RFC 6750).
import { describe, expect, it } from '@jest/globals';
import { parseAuthorization } from '../../../lambdas/auth.js';

describe('parseAuthorization', () => {
  it('takes the token of a Bearer header, scheme case-insensitive', () => {
    expect(parseAuthorization('Bearer mmu_abc-DEF_123')).toEqual({
      ok: true,
      token: 'mmu_abc-DEF_123',
    });
    expect(parseAuthorization('bearer tok==')).toEqual({ ok: true, token: 'tok==' });
  });

  it.each([
    undefined,
    '',
    '   ',
    'Basic dXNlcjpwYXNz',
    'Bearer',
    'Bearer a b',
    'Bearer <script>',
    `Bearer ${'a'.repeat(600)}`,
  ])('refuses %p', (header) => {
    expect(parseAuthorization(header).ok).toBe(false);
  });
});
