// Redacts the secrets the agent knows (an instance's API key, its access token)
// from text before it leaves the agent: child stderr lines, lifecycle records.

export const REDACTED = '[REDACTED]';

/**
 * Secrets shorter than this are not redacted: they cannot be told apart from
 * ordinary text, and replacing every "abc" in a log would destroy the log
 * while protecting nothing a real API key needs.
 */
export const MIN_SECRET_LENGTH = 6;

export interface Redactor {
  /** `text` with every known secret (and its common encodings) replaced by `[REDACTED]`. */
  redact(text: string): string;
  /**
   * The redacted head of `text`, about `maxChars` long: a secret that crosses
   * that point is replaced whole, never cut in half. When `text` is itself only
   * the head of a longer line (`partial`), its last `longestSecret` characters
   * may hold the start of a cut secret and are left out.
   */
  redactHead(text: string, maxChars: number, partial: boolean): string;
  /** Longest form of a secret this redactor looks for, in UTF-8 bytes (0 when none). */
  readonly longestSecret: number;
}

/**
 * Builds one regular expression over every secret and the forms it commonly
 * takes in a log line: as is, base64, base64url and percent-encoded (a key in
 * a URL or an Authorization header a child prints).
 */
export function createRedactor(secrets: readonly string[]): Redactor {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    const bytes = Buffer.from(secret, 'utf8');
    forms.add(secret);
    forms.add(bytes.toString('base64'));
    forms.add(bytes.toString('base64').replace(/=+$/, ''));
    forms.add(bytes.toString('base64url'));
    forms.add(encodeURIComponent(secret));
  }
  if (forms.size === 0)
    return {
      redact: (text) => text,
      redactHead: (text, maxChars) => text.slice(0, maxChars),
      longestSecret: 0,
    };
  // Longest first, so a secret that contains another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(ordered.map(escapeRegExp).join('|'), 'g');
  const longestSecret = Math.max(...ordered.map((form) => Buffer.byteLength(form, 'utf8')));
  return {
    redact: (text) => text.replace(pattern, REDACTED),
    redactHead(text, maxChars, partial) {
      const limit = partial ? Math.min(maxChars, text.length - longestSecret) : maxChars;
      let out = '';
      let last = 0;
      pattern.lastIndex = 0;
      for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
        if (match.index >= limit) break;
        out += text.slice(last, match.index) + REDACTED;
        last = match.index + match[0].length;
      }
      pattern.lastIndex = 0;
      if (last < limit) out += text.slice(last, limit);
      return out;
    },
    longestSecret,
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
