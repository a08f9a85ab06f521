// POST /v1/auth/token: a user trades email and password for an API token.
// Rate-limited per email and client IP against password guessing.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { findUserCredentials } from '../control/db/users.js';
import { asUser } from '../control/db/user-context.js';
import { RateLimitedError, UnauthenticatedError } from '../../core/errors.js';
import { verifyAgainstDummy, verifyPassword } from '../control/passwords.js';
import { createRateLimiter } from '../control/rate-limit.js';
import type { AppDeps, AppEnv } from '../context.js';
import { jsonBody, jsonResponse, problems } from '../schemas.js';
import { IssuedTokenSchema, issueUserToken, TokenLifetime, TokenName } from './tokens.js';

const TokenRequestSchema = z
  .strictObject({
    email: z.email().max(255),
    password: z.string().min(1).max(1024),
    name: TokenName.optional(),
    expires_in_days: TokenLifetime.optional(),
  })
  .openapi('TokenRequest');

/** One answer for an unknown email, a wrong password and an inactive account. */
const BAD_CREDENTIALS = 'The email or password is wrong, or the account is inactive.';

export function registerAuthRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const limiter =
    deps.authRateLimiter ??
    createRateLimiter({
      burst: deps.config.MINIMCP_AUTH_RATE_BURST,
      refillSeconds: deps.config.MINIMCP_AUTH_RATE_REFILL_SECONDS,
    });

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/auth/token',
      tags: ['auth'],
      summary: 'Mint an API token with email and password',
      description:
        'Rate-limited per email and client IP (per API container). The token is shown once.',
      request: { body: jsonBody(TokenRequestSchema) },
      responses: {
        201: jsonResponse(IssuedTokenSchema, 'The new token, shown once.'),
        ...problems(400, 401, 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const email = body.email.toLowerCase();
      const decision = limiter.take(`${email}|${deps.clientIp(c) ?? 'unknown'}`);
      if (!decision.ok) {
        throw new RateLimitedError(
          `Too many token requests for this email from this address; retry in ${decision.retryAfterSeconds} s.`,
          decision.retryAfterSeconds,
        );
      }
      const user = await findUserCredentials(deps.pool, email);
      const passwordOk = user
        ? await verifyPassword(body.password, user.password_hash)
        : await verifyAgainstDummy(body.password);
      if (!user || !passwordOk || user.is_active !== true) {
        throw new UnauthenticatedError(BAD_CREDENTIALS);
      }
      const issued = await asUser(deps.pool, user.id, (tx) =>
        issueUserToken(tx, user.id, body.name ?? 'api', body.expires_in_days),
      );
      c.get('log').info({ userId: user.id, tokenId: issued.id }, 'token minted with password');
      return c.json(issued, 201);
    },
  );
}
