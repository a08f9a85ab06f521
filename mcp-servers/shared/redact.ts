// Keeps secrets out of everything a built-in server emits: tool results, protocol
// messages and stderr. Secrets are registered once (and as they appear, e.g. a
// refreshed OAuth access token) and replaced wherever they occur.

const REPLACEMENT = '[REDACTED]';
// Shorter strings would match ordinary text and garble output; real keys are far longer.
const MIN_SECRET_LENGTH = 6;

export interface Redactor {
  /** Registers a secret; it and its JSON-escaped and URL-encoded forms are redacted from now on. */
  add(secret: string): void;
  text(input: string): string;
  /** Returns `input` unchanged when it holds no secret, else a redacted deep copy. */
  value<T>(input: T): T;
}

export function createRedactor(secrets: Iterable<string> = []): Redactor {
  const forms = new Set<string>();
  // Longest first, so a secret that contains another is replaced whole.
  let ordered: string[] = [];

  const text = (input: string): string => {
    let output = input;
    for (const form of ordered)
      if (output.includes(form)) output = output.split(form).join(REPLACEMENT);
    return output;
  };

  const redactor: Redactor = {
    add(secret) {
      if (secret.length < MIN_SECRET_LENGTH) return;
      const base64 = Buffer.from(secret, 'utf8').toString('base64');
      // Upstreams echo credentials in many shapes: JSON-escaped, percent-encoded, base64.
      for (const form of [
        secret,
        JSON.stringify(secret).slice(1, -1),
        encodeURIComponent(secret),
        base64,
        base64.replace(/=+$/, ''),
        Buffer.from(secret, 'utf8').toString('base64url'),
      ])
        forms.add(form);
      ordered = [...forms].sort((a, b) => b.length - a.length);
    },
    text,
    value<T>(input: T): T {
      if (ordered.length === 0 || input === undefined) return input;
      const serialized = JSON.stringify(input);
      if (serialized === undefined) return input;
      const redacted = text(serialized);
      return redacted === serialized ? input : (JSON.parse(redacted) as T);
    },
  };
  for (const secret of secrets) redactor.add(secret);
  return redactor;
}

/**
 * Routes every write to stderr through the redactor, so no log line, warning or
 * crash report of this process can carry a secret to the agent's log capture.
 */
export function guardStderr(redactor: Redactor): void {
  const write = process.stderr.write.bind(process.stderr) as (
    chunk: string | Uint8Array,
    ...rest: unknown[]
  ) => boolean;
  const guarded = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const textChunk = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return write(redactor.text(textChunk), ...rest);
  };
  process.stderr.write = guarded as typeof process.stderr.write;
}
