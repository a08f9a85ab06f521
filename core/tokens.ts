// Bearer tokens: random, shown once, stored as SHA-256. A token is 32 random
// bytes behind a short kind prefix, so a leaked one is recognisable in a scan.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIXES = {
  /** Opens one MCP instance (Authorization on its access_url). */
  access: 'mcp_',
  /** Authenticates an API client as a user. */
  user: 'mmu_',
  /** Proves a user reads their mailbox: single use, expiring (POST /v1/auth/verify). */
  verify: 'mmv_',
} as const;
export type TokenKind = keyof typeof TOKEN_PREFIXES;

export interface IssuedToken {
  /** The plaintext: hand it over once, never store it. */
  token: string;
  /** SHA-256, hex: what the database keeps. */
  hash: string;
  /** Not secret: the kind prefix and four characters, for display. */
  displayPrefix: string;
}

/** A token's SHA-256 as bytes: what the gateway compares a presented token by. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** A token's SHA-256 as hex: what the database keeps. */
export function hashToken(token: string): string {
  return tokenDigest(token).toString('hex');
}

export function issueToken(kind: TokenKind): IssuedToken {
  const token = TOKEN_PREFIXES[kind] + randomBytes(32).toString('base64url');
  return {
    token,
    hash: hashToken(token),
    displayPrefix: token.slice(0, TOKEN_PREFIXES[kind].length + 4),
  };
}

/** Constant-time comparison of two hex digests (or any equal-length strings). */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Constant-time check of a presented secret against an expected one of any length. */
export function secretsEqual(presented: string, expected: string): boolean {
  return digestsEqual(hashToken(presented), hashToken(expected));
}
