// Bearer authentication: a user API token (mmu_…, looked up by its SHA-256)
// or the bootstrap admin token from configuration (constant-time compare).
import type { MiddlewareHandler } from 'hono';
import { findTokenPrincipal, touchUserToken } from './control/db/user-tokens.js';
import { asSystem } from './control/db/user-context.js';
import { ForbiddenError, UnauthenticatedError } from '../core/errors.js';
import { hashToken, secretsEqual } from '../core/tokens.js';
import type { AppContext, AppDeps, AppEnv, Principal } from './context.js';

/** RFC 6750 token68 characters; anything else cannot be one of our tokens. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]{1,512}=*)$/i;

type ParsedAuthorization = { ok: true; token: string } | { ok: false; message: string };

export function parseAuthorization(header: string | undefined): ParsedAuthorization {
  if (header === undefined || header.trim() === '') {
    return { ok: false, message: 'Send an API token as "Authorization: Bearer <token>".' };
  }
  const match = BEARER.exec(header.trim());
  if (!match?.[1]) {
    return { ok: false, message: 'The Authorization header must be "Bearer <token>".' };
  }
  return { ok: true, token: match[1] };
}

const INVALID_TOKEN = 'The API token is invalid, expired or revoked.';

async function resolvePrincipal(deps: AppDeps, token: string): Promise<Principal | null> {
  const adminToken = deps.config.MINIMCP_ADMIN_TOKEN;
  if (adminToken !== undefined && secretsEqual(token, adminToken)) {
    return { kind: 'bootstrap-admin', role: 'admin' };
  }
  if (!token.startsWith('mmu_')) return null;
  // The user is not known yet, so the lookup runs as system; the hash is the capability.
  const row = await asSystem(deps.pool, async (tx) => {
    const found = await findTokenPrincipal(tx, hashToken(token));
    if (found?.touch_due) await touchUserToken(tx, found.token_id);
    return found;
  });
  if (!row) return null;
  return {
    kind: 'user',
    userId: row.user_id,
    email: row.email,
    name: row.name,
    role: row.role,
    tokenId: row.token_id,
    tokenName: row.token_name,
    tokenExpiresAt: row.token_expires_at,
  };
}

/** Requires a valid bearer token; sets `principal`. */
export function authenticate(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const parsed = parseAuthorization(c.req.header('authorization'));
    if (!parsed.ok) throw new UnauthenticatedError(parsed.message);
    const principal = await resolvePrincipal(deps, parsed.token);
    if (!principal) throw new UnauthenticatedError(INVALID_TOKEN);
    c.set('principal', principal);
    await next();
  };
}

/** After authenticate: only admins (role admin, or the bootstrap token) pass. */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get('principal')?.role !== 'admin') {
    throw new ForbiddenError('This route is for admins only.');
  }
  await next();
};

export function principalOf(c: AppContext): Principal {
  const principal = c.get('principal');
  // A route that calls this without the authenticate middleware is a bug: deny.
  if (!principal) throw new UnauthenticatedError('Authentication required.');
  return principal;
}

/** The calling user; the bootstrap admin token has none and is refused. */
export function userOf(c: AppContext): Extract<Principal, { kind: 'user' }> {
  const principal = principalOf(c);
  if (principal.kind !== 'user') {
    throw new ForbiddenError(
      'The bootstrap admin token has no user: create a user (POST /v1/users) and mint a token for it (POST /v1/auth/token).',
    );
  }
  return principal;
}
