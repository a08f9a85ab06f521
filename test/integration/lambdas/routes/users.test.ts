// Users over real HTTP: an admin (bootstrap token or role admin) creates,
// lists and deactivates them; a deactivated user's tokens stop working.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { verifyPassword } from '../../../../lambdas/control/passwords.js';
import { expectProblem, startTestApi, type TestApi } from '../../../support/api.js';

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});

type UserView = { id: string; email: string; name: string; role: string; active: boolean };

describe('POST /v1/users', () => {
  it('lets the bootstrap admin create a user who can then mint a token with the password', async () => {
    const response = await api.request('POST', '/v1/users', {
      token: api.adminToken,
      json: { email: 'Ada@Example.test', password: 'analytical-engine', name: 'Ada' },
    });
    expect(response.status).toBe(201);
    const user = response.json<UserView>();
    expect(user).toMatchObject({
      email: 'ada@example.test',
      name: 'Ada',
      role: 'user',
      active: true,
    });
    expect(response.text).not.toContain('analytical-engine');

    const stored = await api.db.owner.oneFirst(
      sql.type(
        z.object({ password_hash: z.string() }),
      )`SELECT password_hash FROM users WHERE id = ${user.id}`,
    );
    expect(stored).toMatch(/^\$scrypt\$ln=15,r=8,p=3\$/);
    expect(await verifyPassword('analytical-engine', stored)).toBe(true);

    const minted = await api.request('POST', '/v1/auth/token', {
      json: { email: 'ada@example.test', password: 'analytical-engine' },
    });
    expect(minted.status).toBe(201);
  });

  it('lets a user with role admin create another admin', async () => {
    const admin = await api.createUserWithToken({ role: 'admin' });
    const response = await api.request('POST', '/v1/users', {
      token: admin.token,
      json: {
        email: 'grace@example.test',
        password: 'compiler-pioneer',
        name: 'Grace',
        role: 'admin',
      },
    });
    expect(response.status).toBe(201);
    expect(response.json<UserView>().role).toBe('admin');
  });

  it('answers 409 for an email already taken, in any case', async () => {
    const existing = await api.createUser();
    const response = await api.request('POST', '/v1/users', {
      token: api.adminToken,
      json: { email: existing.email.toUpperCase(), password: 'long-enough-pw', name: 'Dup' },
    });
    expectProblem(response, 409, 'conflict');
    expect(response.json<{ detail: string }>().detail).toContain(existing.email);
  });

  it('refuses a short password without echoing it, a bad email, a bad role and unknown fields', async () => {
    const base = { email: 'new@example.test', password: 'long-enough-pw', name: 'New' };
    const cases = [
      { ...base, password: 'short-pw' },
      { ...base, email: 'not an email' },
      { ...base, role: 'root' },
      { ...base, name: '   ' },
      { ...base, is_active: false },
    ];
    for (const json of cases) {
      const response = await api.request('POST', '/v1/users', { token: api.adminToken, json });
      expectProblem(response, 400, 'validation-failed');
      expect(response.text).not.toContain('short-pw');
    }
  });

  it('refuses a user without the admin role with 403 and no token with 401', async () => {
    const user = await api.createUserWithToken();
    const json = { email: 'x@example.test', password: 'long-enough-pw', name: 'X' };
    expectProblem(
      await api.request('POST', '/v1/users', { token: user.token, json }),
      403,
      'forbidden',
    );
    expectProblem(await api.request('POST', '/v1/users', { json }), 401, 'unauthenticated');
  });
});

describe('GET /v1/users', () => {
  it('lists users for admins, without password hashes', async () => {
    const user = await api.createUser();
    const response = await api.request('GET', '/v1/users', { token: api.adminToken });
    expect(response.status).toBe(200);
    const { users } = response.json<{ users: UserView[] }>();
    expect(users.find((u) => u.id === user.id)).toMatchObject({ email: user.email, active: true });
    expect(response.text).not.toContain('scrypt');
  });

  it('refuses users with 403', async () => {
    const user = await api.createUserWithToken();
    expectProblem(await api.request('GET', '/v1/users', { token: user.token }), 403, 'forbidden');
  });
});

describe('POST /v1/users/{id}/deactivate', () => {
  it('deactivates the user: their tokens stop working and they cannot mint new ones', async () => {
    const user = await api.createUserWithToken();
    expect((await api.request('GET', '/v1/me', { token: user.token })).status).toBe(200);
    const response = await api.request('POST', `/v1/users/${user.id}/deactivate`, {
      token: api.adminToken,
    });
    expect(response.status).toBe(200);
    expect(response.json<UserView>()).toMatchObject({ id: user.id, active: false });
    expectProblem(
      await api.request('GET', '/v1/me', { token: user.token }),
      401,
      'unauthenticated',
    );
    const revoked = await api.db.owner.oneFirst(
      sql.type(z.object({ n: z.number() }))`
        SELECT count(*)::int AS n FROM user_api_tokens WHERE user_id = ${user.id} AND revoked_at IS NULL`,
    );
    expect(revoked).toBe(0);
    const minted = await api.request('POST', '/v1/auth/token', {
      json: { email: user.email, password: user.password },
    });
    expectProblem(minted, 401, 'unauthenticated');
    const list = await api.request('GET', '/v1/users', { token: api.adminToken });
    expect(list.json<{ users: UserView[] }>().users.find((u) => u.id === user.id)?.active).toBe(
      false,
    );
  });

  it('answers 404 for an unknown user and 400 for a malformed id', async () => {
    expectProblem(
      await api.request('POST', '/v1/users/6f1c2b7e-3d0a-4c55-9a39-7c7e5d3b1a20/deactivate', {
        token: api.adminToken,
      }),
      404,
      'not-found',
    );
    expectProblem(
      await api.request('POST', '/v1/users/42/deactivate', { token: api.adminToken }),
      400,
      'validation-failed',
    );
  });

  it('refuses users with 403, leaving the target active', async () => {
    const user = await api.createUserWithToken();
    const target = await api.createUserWithToken();
    expectProblem(
      await api.request('POST', `/v1/users/${target.id}/deactivate`, { token: user.token }),
      403,
      'forbidden',
    );
    expect((await api.request('GET', '/v1/me', { token: target.token })).status).toBe(200);
  });
});
