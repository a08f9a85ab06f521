// Redaction of known secrets from child output and agent records.
import { describe, expect, it } from '@jest/globals';
import { createRedactor, REDACTED } from '../../../../agent/child/redactor.js';

const KEY = 'ghp_S3cr3t.Key+with/regex*chars';

describe('redact', () => {
  it('replaces every occurrence of a secret, regex metacharacters included', () => {
    const redactor = createRedactor([KEY]);

    expect(redactor.redact(`a ${KEY} b ${KEY}`)).toBe(`a ${REDACTED} b ${REDACTED}`);
  });

  it('replaces the base64, base64url and percent-encoded forms too', () => {
    const redactor = createRedactor([KEY]);
    const base64 = Buffer.from(KEY).toString('base64');
    const base64url = Buffer.from(KEY).toString('base64url');

    const line = `basic ${base64} url ${base64url} query ?key=${encodeURIComponent(KEY)}`;

    expect(redactor.redact(line)).toBe(`basic ${REDACTED} url ${REDACTED} query ?key=${REDACTED}`);
  });

  it('replaces the longer of two overlapping secrets whole', () => {
    const redactor = createRedactor(['abcdef', 'abcdefghij']);

    expect(redactor.redact('x abcdefghij y abcdef')).toBe(`x ${REDACTED} y ${REDACTED}`);
  });

  it('leaves text alone without secrets, and ignores secrets too short to tell from text', () => {
    expect(createRedactor([]).redact('plain')).toBe('plain');
    expect(createRedactor(['', 'abc']).redact('abc abc')).toBe('abc abc');
  });
});

describe('redactHead', () => {
  it('never cuts a secret in half at the length limit', () => {
    const redactor = createRedactor([KEY]);
    const text = 'x'.repeat(10) + KEY + 'tail';

    const head = redactor.redactHead(text, 12, false);

    expect(head).toBe('x'.repeat(10) + REDACTED);
  });

  it('drops the end of a partial line, where a cut secret could start', () => {
    const redactor = createRedactor([KEY]);
    // The line was cut by the reader inside the secret: only its prefix is here.
    const text = 'y'.repeat(100) + KEY.slice(0, 10);

    const head = redactor.redactHead(text, 200, true);

    expect(head).not.toContain(KEY.slice(0, 4));
    expect(head).toBe('y'.repeat(text.length - redactor.longestSecret));
  });
});
