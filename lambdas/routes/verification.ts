// Email verification over HTTP: POST /v1/auth/verify redeems the token of a
// mailed link (no bearer token: the link's token is the proof), and
// POST /v1/auth/verify/request mails a new link to the calling user.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ConflictError, RateLimitedError } from '../../core/errors.js';
import {
  redeemVerification,
  sendVerification,
  type VerificationDeps,
} from '../control/email-verification.js';
import { isEmailVerified } from '../control/db/users.js';
import { createMailer } from '../control/mailer.js';
import { createRateLimiter } from '../control/rate-limit.js';
import { authenticate, userOf } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
import { BEARER, iso, jsonBody, jsonResponse, problems, Timestamp } from '../schemas.js';
import { requestMeta } from '../context.js';

const VerifyRequestSchema = z
  .strictObject({
    token: z
      .string()
      .min(1)
      .max(256)
      .openapi({ description: 'The token of the mailed link (mmv_…).' }),
  })
  .openapi('VerifyEmail');

const VerifiedSchema = z
  .object({ verified: z.literal(true), user_id: z.uuid() })
  .openapi('EmailVerified');

const VerificationSentSchema = z
  .object({
    sent: z.literal(true),
    expires_at: Timestamp.openapi({ description: 'When the new link stops working.' }),
  })
  .openapi('VerificationSent');

/** New links a user may ask for in a burst, and the seconds to earn one back. */
const REQUEST_BURST = 3;
const REQUEST_REFILL_SECONDS = 600;

const built = new WeakMap<AppDeps, VerificationDeps>();

/** The verification dependencies of an app (one mailer per app), built on first use. */
export function verificationDeps(deps: AppDeps): VerificationDeps {
  let found = built.get(deps);
  if (!found) {
    const { config } = deps;
    const apiBase = (
      config.MINIMCP_PUBLIC_API_URL ??
      `http://${config.MINIMCP_API_HOST}:${config.MINIMCP_API_PORT}`
    ).replace(/\/+$/, '');
    const apiVerifyUrl = `${apiBase}/v1/auth/verify`;
    found = {
      pool: deps.pool,
      mailer: deps.mailer ?? createMailer(config, deps.logger),
      logger: deps.logger,
      verifyUrl: config.MINIMCP_VERIFY_URL ?? apiVerifyUrl,
      apiVerifyUrl,
      ttlMinutes: config.MINIMCP_VERIFY_TTL_MINUTES,
    };
    built.set(deps, found);
  }
  return found;
}

export function registerVerificationRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  // Built now: a mail configuration that cannot work fails the start, not a request.
  const verification = verificationDeps(deps);
  const limiter = createRateLimiter({
    burst: REQUEST_BURST,
    refillSeconds: REQUEST_REFILL_SECONDS,
  });

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/auth/verify',
      tags: ['auth'],
      summary: 'Verify an email address with the token of a mailed link',
      description:
        'No bearer token: the link’s token is the proof. A token works once, until it expires (MINIMCP_VERIFY_TTL_MINUTES), and only the newest link of a user works.',
      request: { body: jsonBody(VerifyRequestSchema) },
      responses: {
        200: jsonResponse(VerifiedSchema, 'The address is verified.'),
        ...problems(400, 413, 415, 503),
      },
    }),
    async (c) => {
      const { token } = c.req.valid('json');
      const { userId } = await redeemVerification(deps, token, requestMeta(c, deps));
      c.get('log').info({ userId }, 'email verified');
      return c.json({ verified: true as const, user_id: userId }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/auth/verify/request',
      tags: ['auth'],
      summary: 'Mail a new verification link to the calling user',
      description: `Spends any earlier link. At most ${REQUEST_BURST} in a burst per user, then one per ${REQUEST_REFILL_SECONDS / 60} minutes (per API container). 409 when the address is already verified.`,
      security: BEARER,
      middleware: [authenticate(deps)],
      responses: {
        202: jsonResponse(VerificationSentSchema, 'The link was handed to the mailer.'),
        ...problems(401, 403, 409, 429, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      if (await isEmailVerified(deps.pool, user.userId))
        throw new ConflictError('your email address is already verified', {
          userId: user.userId,
        });
      const decision = limiter.take(user.userId);
      if (!decision.ok)
        throw new RateLimitedError(
          `too many verification links asked for; retry in ${decision.retryAfterSeconds} s`,
          decision.retryAfterSeconds,
        );
      const sent = await sendVerification(
        verification,
        { id: user.userId, email: user.email, name: user.name },
        { kind: 'user', userId: user.userId },
        requestMeta(c, deps),
      );
      return c.json({ sent: true as const, expires_at: iso(sent.expiresAt) }, 202);
    },
  );
}
