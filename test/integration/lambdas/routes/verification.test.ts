// Email verification over real HTTP: a link mailed (to the local outbox) on
// user creation and on request, POST /v1/auth/verify with a single-use,
// expiring token kept as a hash, and the admin setting that keeps unverified
// users from creating instances.
import { describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { issueToken } from '../../../../core/tokens.js';
import {
  accountEvents,
  mailsTo,
  newestVerificationToken,
  accountsHarnessForFile,
} from '../../../support/accounts.js';
import { expectProblem } from '../../../support/api.js';
import { putSetting } from '../../../support/queries.js';
import { dumpDatabase, findLeaks, secretForms } from '../../../support/secret-scan.js';

const t = accountsHarnessForFile();

let counter = 0;
async function createUserByAdmin(): Promise<{ id: string; email: string; password: string }> {
  counter += 1;
  const email = `verify-${counter}-${Date.now()}@example.test`;
  const password = 'correct-horse-battery';
  const response = await t.api.request('POST', '/v1/users', {
    token: t.api.adminToken,
    json: { email, password, name: `Verify ${counter}` },
  });
  expect(response.status).toBe(201);
  return { id: response.json<{ id: string }>().id, email, password };
}

async function emailVerified(userId: string): Promise<boolean | null> {
  return t.api.db.owner.oneFirst(sql.type(z.object({ email_verified: z.boolean().nullable() }))`
    SELECT email_verified FROM users WHERE id = ${userId}
  `);
}

async function login(email: string, password: string): Promise<string> {
  const response = await t.api.request('POST', '/v1/auth/token', { json: { email, password } });
  expect(response.status).toBe(201);
  return response.json<{ token: string }>().token;
}

describe('the verification link', () => {
  it('is mailed when an admin creates a user, and verifies the address once', async () => {
    const user = await createUserByAdmin();
    const mails = await mailsTo(t.dataDir, user.email);
    expect(mails).toHaveLength(1);
    const token = await newestVerificationToken(t.dataDir, user.email);
    expect(mails[0]!.text).toContain(`https://api.minimcp.test/v1/auth/verify?token=${token}`);
    expect(await emailVerified(user.id)).toBe(false);

    const verified = await t.api.request('POST', '/v1/auth/verify', { json: { token } });
    expect(verified.status).toBe(200);
    expect(verified.json()).toEqual({ verified: true, user_id: user.id });
    expect(await emailVerified(user.id)).toBe(true);
    const users = await t.api.request('GET', '/v1/users', { token: t.api.adminToken });
    expect(
      users
        .json<{ users: { id: string; email_verified: boolean }[] }>()
        .users.find((u) => u.id === user.id),
    ).toMatchObject({ email_verified: true });
    expect((await accountEvents(t.api, user.id)).map((e) => [e.event_type, e.actor])).toEqual([
      ['verification_sent', 'bootstrap-admin'],
      ['email_verified', 'user'],
    ]);
  });

  it('refuses a token used once already', async () => {
    const user = await createUserByAdmin();
    const token = await newestVerificationToken(t.dataDir, user.email);
    expect((await t.api.request('POST', '/v1/auth/verify', { json: { token } })).status).toBe(200);

    const again = await t.api.request('POST', '/v1/auth/verify', { json: { token } });
    expectProblem(again, 400, 'verification-token-invalid');
    expect(again.json<{ detail: string }>().detail).toContain('already used');
  });

  it('refuses an expired token and leaves the address unverified', async () => {
    const user = await createUserByAdmin();
    const token = await newestVerificationToken(t.dataDir, user.email);
    await t.api.db.owner.query(sql.unsafe`
      UPDATE email_verification_tokens SET expires_at = now() - interval '1 second'
      WHERE user_id = ${user.id}
    `);

    const response = await t.api.request('POST', '/v1/auth/verify', { json: { token } });
    expectProblem(response, 400, 'verification-token-invalid');
    expect(response.json<{ detail: string }>().detail).toContain('expired');
    expect(await emailVerified(user.id)).toBe(false);
  });

  it('refuses a wrong token, without echoing it', async () => {
    const wrong = issueToken('verify').token;
    const response = await t.api.request('POST', '/v1/auth/verify', { json: { token: wrong } });
    expectProblem(response, 400, 'verification-token-invalid');
    expect(response.text).not.toContain(wrong);
    const empty = await t.api.request('POST', '/v1/auth/verify', { json: { token: '' } });
    expectProblem(empty, 400, 'validation-failed');
  });

  it('keeps only the token’s hash in the database and the token out of every log line', async () => {
    const user = await createUserByAdmin();
    const token = await newestVerificationToken(t.dataDir, user.email);
    const leaks = findLeaks(secretForms(token), [
      ...(await dumpDatabase(t.api.db.owner)),
      ...t.api.logs.map((text, i) => ({ where: `log line ${i}`, text })),
    ]);
    expect(leaks).toEqual([]);
  });
});

describe('POST /v1/auth/verify/request', () => {
  it('mails a new link to the caller; the older link stops working', async () => {
    const user = await createUserByAdmin();
    const first = await newestVerificationToken(t.dataDir, user.email);
    const token = await login(user.email, user.password);

    const requested = await t.api.request('POST', '/v1/auth/verify/request', { token });
    expect(requested.status).toBe(202);
    expect(requested.json<{ sent: boolean; expires_at: string }>().sent).toBe(true);
    expect(await mailsTo(t.dataDir, user.email)).toHaveLength(2);
    const second = await newestVerificationToken(t.dataDir, user.email);
    expect(second).not.toBe(first);

    expectProblem(
      await t.api.request('POST', '/v1/auth/verify', { json: { token: first } }),
      400,
      'verification-token-invalid',
    );
    expect(
      (await t.api.request('POST', '/v1/auth/verify', { json: { token: second } })).status,
    ).toBe(200);
  });

  it('answers 409 once the address is verified, 401 without a token, 403 for the bootstrap admin', async () => {
    const user = await createUserByAdmin();
    await t.api.request('POST', '/v1/auth/verify', {
      json: { token: await newestVerificationToken(t.dataDir, user.email) },
    });
    const token = await login(user.email, user.password);
    expectProblem(
      await t.api.request('POST', '/v1/auth/verify/request', { token }),
      409,
      'conflict',
    );
    expectProblem(await t.api.request('POST', '/v1/auth/verify/request'), 401, 'unauthenticated');
    expectProblem(
      await t.api.request('POST', '/v1/auth/verify/request', { token: t.api.adminToken }),
      403,
      'forbidden',
    );
  });

  it('limits how many links a user asks for in a burst', async () => {
    const user = await t.api.createUserWithToken();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push(
        (await t.api.request('POST', '/v1/auth/verify/request', { token: user.token })).status,
      );
    expect(statuses).toEqual([202, 202, 202, 429]);
  });
});

describe('the users.require_verified_email setting', () => {
  it('is off by default: an unverified user creates instances', async () => {
    const user = await t.api.createUserWithToken();
    const created = await t.api.request('POST', '/v1/instances', {
      token: user.token,
      json: { type: 'demo' },
    });
    expect([201, 202]).toContain(created.status);
  });

  it('when on, refuses an unverified user with 403 and lets them in once verified', async () => {
    await putSetting(t.api.db.owner, 'users.require_verified_email', true);
    try {
      const user = await createUserByAdmin();
      const token = await login(user.email, user.password);
      const refused = await t.api.request('POST', '/v1/instances', {
        token,
        json: { type: 'demo' },
      });
      expectProblem(refused, 403, 'email-not-verified');
      expect(refused.json<{ detail: string }>().detail).toContain('POST /v1/auth/verify/request');

      await t.api.request('POST', '/v1/auth/verify', {
        json: { token: await newestVerificationToken(t.dataDir, user.email) },
      });
      const created = await t.api.request('POST', '/v1/instances', {
        token,
        json: { type: 'demo' },
      });
      expect([201, 202]).toContain(created.status);
    } finally {
      await putSetting(t.api.db.owner, 'users.require_verified_email', false);
    }
  });
});
