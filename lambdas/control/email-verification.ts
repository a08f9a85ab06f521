// Email verification: a single-use, expiring token (stored as its SHA-256)
// mailed as a link on user creation and on request, and redeemed by
// POST /v1/auth/verify, which sets users.email_verified. The token is in the
// mail only: never in a log line, an answer or the database.
import type { DatabasePool } from 'slonik';
import { VerificationTokenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { hashToken, issueToken } from '../../core/tokens.js';
import { insertAccountEvent, type AccountActor } from './db/account-events.js';
import {
  findVerificationToken,
  insertVerificationToken,
  markVerificationTokenUsed,
} from './db/email-verifications.js';
import { asSystem, asUser } from './db/user-context.js';
import { markEmailVerified } from './db/users.js';
import { auditMeta, type RequestMeta } from './instance/deps.js';
import type { Mailer } from './mailer.js';

export interface VerificationDeps {
  pool: DatabasePool;
  mailer: Mailer;
  logger: Logger;
  /** The page the link opens; the token is appended as ?token=. */
  verifyUrl: string;
  /** Where POST /v1/auth/verify is, for the curl line of the mail. */
  apiVerifyUrl: string;
  ttlMinutes: number;
  clock?: () => Date;
}

function mailText(
  user: { name: string },
  link: string,
  apiVerifyUrl: string,
  token: string,
  ttlMinutes: number,
) {
  const validity = ttlMinutes % 60 === 0 ? `${ttlMinutes / 60} hour(s)` : `${ttlMinutes} minute(s)`;
  return [
    `Hello ${user.name || 'there'},`,
    '',
    `Confirm your email address for MiniMCP by opening this link within ${validity}:`,
    '',
    link,
    '',
    'Or send the token to the API yourself:',
    '',
    `curl -X POST ${apiVerifyUrl} -H 'content-type: application/json' -d '{"token":"${token}"}'`,
    '',
    'The link works once. If you did not ask for it, ignore this message.',
    '',
  ].join('\n');
}

/**
 * Stores a new token for the user's address (spending any older one), writes
 * the `verification_sent` event, then mails the link. Resolves when the
 * mailer took the message.
 */
export async function sendVerification(
  deps: VerificationDeps,
  user: { id: string; email: string; name: string },
  actor: AccountActor,
  meta?: RequestMeta,
): Promise<{ expiresAt: Date; mailId: string }> {
  const now = (deps.clock ?? (() => new Date()))();
  const expiresAt = new Date(now.getTime() + deps.ttlMinutes * 60_000);
  const token = issueToken('verify');
  await asUser(deps.pool, user.id, async (tx) => {
    await insertVerificationToken(tx, {
      userId: user.id,
      email: user.email,
      hash: token.hash,
      expiresAt,
    });
    await insertAccountEvent(tx, {
      userId: user.id,
      actor,
      type: 'verification_sent',
      data: { expires_at: expiresAt.toISOString() },
      ...auditMeta(meta),
    });
  });
  const link = new URL(deps.verifyUrl);
  link.searchParams.set('token', token.token);
  const sent = await deps.mailer.send({
    to: user.email,
    subject: 'Confirm your email address for MiniMCP',
    text: mailText(user, link.toString(), deps.apiVerifyUrl, token.token, deps.ttlMinutes),
  });
  deps.logger.info(
    { userId: user.id, mailId: sent.id, mailer: deps.mailer.kind },
    'verification link sent',
  );
  return { expiresAt, mailId: sent.id };
}

/** Redeems a token: the user's address becomes verified; the token is spent. */
export async function redeemVerification(
  deps: Pick<VerificationDeps, 'pool'>,
  token: string,
  meta?: RequestMeta,
): Promise<{ userId: string }> {
  // The user is not known until the token is looked up: system scope; the hash is the capability.
  return asSystem(deps.pool, async (tx) => {
    const row = await findVerificationToken(tx, hashToken(token));
    if (!row)
      throw new VerificationTokenError(
        'the verification token is not valid: use the newest link you were sent, or ask for a new one',
      );
    if (row.used)
      throw new VerificationTokenError(
        'the verification token was already used (or a newer link replaced it): ask for a new one if your address is still unverified',
      );
    if (row.expired)
      throw new VerificationTokenError(
        'the verification token has expired: ask for a new link with POST /v1/auth/verify/request',
      );
    if (!row.email_current)
      throw new VerificationTokenError(
        'the verification token was sent to an address that is no longer this account’s, or the account is inactive',
      );
    await markVerificationTokenUsed(tx, row.id);
    await markEmailVerified(tx, row.user_id);
    await insertAccountEvent(tx, {
      userId: row.user_id,
      actor: { kind: 'user', userId: row.user_id },
      type: 'email_verified',
      ...auditMeta(meta),
    });
    return { userId: row.user_id };
  });
}
