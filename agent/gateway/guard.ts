// Who may talk to the gateway: the Host header (DNS rebinding), the browser
// Origin and the bearer token. Each check returns a result and denies on any
// doubt; it owns the allow lists and the token digest, never the plaintext.
// @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#security-warning
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { tokenDigest } from '../../core/tokens.js';

/** A check's answer: the value that was allowed, or the HTTP refusal to send. */
export type GuardResult<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      status: number;
      code: GuardDenial;
      message: string;
      /** Headers the refusal carries (WWW-Authenticate). */
      headers?: Record<string, string>;
    };

export type GuardDenial =
  'host_not_allowed' | 'origin_not_allowed' | 'missing_token' | 'invalid_token';

export interface GuardOptions {
  /** The address the gateway listens on: decides the default Host check. */
  bindHost: string;
  /** SHA-256 (hex) of the instance's access token. */
  tokenHash: string;
  /** Browser origins allowed (exact `scheme://host[:port]`); default: loopback origins. */
  allowedOrigins?: readonly string[];
  /** Host names a Host header may name besides the loopback ones. */
  allowedHosts?: readonly string[];
}

export interface Guard {
  host(header: string | undefined): GuardResult<string | undefined>;
  origin(origin: string): GuardResult<string>;
  bearer(header: string | undefined): GuardResult<undefined>;
  /** After a token rotation: the old token is refused from the next request on. */
  setTokenHash(hash: string): void;
}

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);
/** A Host header: a name or IPv4 address, or a bracketed IPv6 address, and an optional port. */
const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/i;
const BEARER_REALM = 'Bearer realm="minimcp"';
/** The bearer check's answer when it allows: one object, not one per request. */
const ALLOWED: GuardResult<undefined> = Object.freeze({ ok: true, value: undefined });

/**
 * The checks with the gateway's options bound. A client sends the same Host
 * and Origin on every request: the last allowed value of each skips the parse
 * (not the token: it is a secret, checked by digest on every request).
 */
export function createGuard(options: GuardOptions): Guard {
  const allowedHosts = hostAllowList(options.bindHost, options.allowedHosts);
  const allowedOrigins =
    options.allowedOrigins === undefined
      ? undefined
      : new Set(options.allowedOrigins.map((origin) => origin.toLowerCase()));
  let expectedDigest = Buffer.from(options.tokenHash, 'hex');
  let lastAllowedHost: string | undefined;
  let lastAllowedOrigin: string | undefined;
  return {
    host(header) {
      if (allowedHosts === undefined || (header !== undefined && header === lastAllowedHost))
        return { ok: true, value: header };
      const checked = checkHost(header, allowedHosts);
      if (checked.ok) lastAllowedHost = header;
      return checked;
    },
    origin(origin) {
      if (origin === lastAllowedOrigin) return { ok: true, value: origin };
      const checked = checkOrigin(origin, allowedOrigins);
      if (checked.ok) lastAllowedOrigin = origin;
      return checked;
    },
    bearer: (header) => checkBearer(header, expectedDigest),
    setTokenHash(hash) {
      expectedDigest = Buffer.from(hash, 'hex');
    },
  };
}

/**
 * The host names a Host header may name, or undefined for no check. Loopback
 * names are always allowed: a rebinding page's requests carry its own name.
 * Unconfigured, a gateway on a loopback address serves loopback names only;
 * on any other address the names clients use for the node are not known here.
 */
export function hostAllowList(
  bindHost: string,
  configured: readonly string[] | undefined,
): ReadonlySet<string> | undefined {
  if (configured === undefined) return isLoopbackAddress(bindHost) ? LOOPBACK_HOSTS : undefined;
  const names = new Set(LOOPBACK_HOSTS);
  for (const name of configured) {
    const lower = name.toLowerCase();
    names.add(isIP(lower) === 6 ? `[${lower}]` : lower);
  }
  return names;
}

/** A Host header against an allow list (undefined: no check). */
export function checkHost(
  header: string | undefined,
  allowedHosts: ReadonlySet<string> | undefined,
): GuardResult<string | undefined> {
  if (allowedHosts === undefined) return { ok: true, value: header };
  const match = header === undefined ? null : HOST_HEADER.exec(header);
  if (match !== null && allowedHosts.has(match[1]!.toLowerCase()))
    return { ok: true, value: header };
  return {
    ok: false,
    status: 403,
    code: 'host_not_allowed',
    message: `host ${header ?? '(none)'} is not allowed`,
  };
}

/** A browser Origin against the allow list; unconfigured, loopback origins on any port. */
export function checkOrigin(
  origin: string,
  allowedOrigins: ReadonlySet<string> | undefined,
): GuardResult<string> {
  if (isAllowedOrigin(origin, allowedOrigins)) return { ok: true, value: origin };
  return {
    ok: false,
    status: 403,
    code: 'origin_not_allowed',
    message: `origin ${origin} is not allowed`,
  };
}

function isAllowedOrigin(origin: string, allowedOrigins: ReadonlySet<string> | undefined): boolean {
  if (allowedOrigins !== undefined) return allowedOrigins.has(origin.toLowerCase());
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" or garbage: deny on any doubt
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK_HOSTS.has(url.hostname)
  );
}

/**
 * An Authorization header against the token's digest. Digests are compared,
 * not tokens: constant time, and no plaintext kept.
 */
export function checkBearer(
  header: string | undefined,
  expectedDigest: Buffer,
): GuardResult<undefined> {
  if (header === undefined || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ')
    return {
      ok: false,
      status: 401,
      code: 'missing_token',
      message: 'missing bearer token: send Authorization: Bearer <access_token>',
      headers: { 'www-authenticate': BEARER_REALM },
    };
  const presented = tokenDigest(header.slice(7).trim());
  if (presented.length !== expectedDigest.length || !timingSafeEqual(presented, expectedDigest))
    return {
      ok: false,
      status: 401,
      code: 'invalid_token',
      message: 'invalid access token',
      headers: { 'www-authenticate': `${BEARER_REALM}, error="invalid_token"` },
    };
  return ALLOWED;
}

function isLoopbackAddress(address: string): boolean {
  const bare = address.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return (
    bare === 'localhost' ||
    bare === '::1' ||
    (isIP(bare) === 4 && bare.startsWith('127.')) ||
    bare === '::ffff:127.0.0.1'
  );
}
