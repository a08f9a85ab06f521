// Authentication over real HTTP: minting tokens with a password (rate-limited),
// bearer checks, the bootstrap admin token, and a user's own tokens.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { hashToken } from '../../../../core/tokens.js';
import { expectProblem, startTestApi, type TestApi, type TestUser } from '../../../support/api.js';

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi({
    env: { MINIMCP_AUTH_RATE_BURST: '3', MINIMCP_AUTH_RATE_REFILL_SECONDS: '600' },
  });
});
afterAll(async () => {
  await api?.close();
});

const TokenRow = z.object({
  token_hash: z.string(),
  name: z.string(),
  last_used_at: z.date().nullable(),
  revoked_at: z.date().nullable(),
});

async function tokenRow(id: string) {
  return api.db.owner.one(
    sql.type(
      TokenRow,
    )`SELECT token_hash, name, last_used_at, revoked_at FROM user_api_tokens WHERE id = ${id}`,
  );
}

async function mint(user: TestUser, extra: Record<string, unknown> = {}) {
  return api.request('POST', '/v1/auth/token', {
    json: { email: user.email, password: user.password, ...extra },
  });
}

describe('POST /v1/auth/token', () => {
  it('mints a token shown once, stored only as its SHA-256, that authenticates the user', async () => {
    const user = await api.createUser();
    const response = await mint(user, { name: 'laptop', expires_in_days: 7 });
    expect(response.status).toBe(201);
    const issued = response.json<{
      id: string;
      name: string;
      token: string;
      token_prefix: string;
      expires_at: string;
    }>();
    expect(issued.token).toMatch(/^mmu_[A-Za-z0-9_-]{43}$/);
    expect(issued.token_prefix).toBe(issued.token.slice(0, 8));
    expect(issued.name).toBe('laptop');
    const days = (Date.parse(issued.expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7);

    const row = await tokenRow(issued.id);
    expect(row.token_hash).toBe(hashToken(issued.token));
    const me = await api.request('GET', '/v1/me', { token: issued.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      principal: 'user',
      role: 'user',
      user: { id: user.id, email: user.email },
      token: { id: issued.id, name: 'laptop' },
    });
  });

  it('accepts the email in any case and expires tokens after 90 days by default', async () => {
    const user = await api.createUser();
    const response = await mint({ ...user, email: user.email.toUpperCase() });
    expect(response.status).toBe(201);
    const { expires_at, name } = response.json<{ expires_at: string; name: string }>();
    expect(name).toBe('api');
    expect(Math.round((Date.parse(expires_at) - Date.now()) / 86_400_000)).toBe(90);
  });

  it('gives the same 401 for a wrong password, an unknown email and an inactive account', async () => {
    const user = await api.createUser();
    const inactive = await api.createUser();
    await api.db.owner.query(
      sql.unsafe`UPDATE users SET is_active = false WHERE id = ${inactive.id}`,
    );
    const answers = await Promise.all([
      mint({ ...user, password: `${user.password}x` }),
      mint({ ...user, email: 'nobody@example.test' }),
      mint(inactive),
    ]);
    for (const response of answers) {
      expectProblem(response, 401, 'unauthenticated');
    }
    const details = answers.map((r) => r.json<{ detail: string }>().detail);
    expect(new Set(details).size).toBe(1);
    expect(details[0]).not.toContain(user.email);
  });

  it('never echoes the password in a validation error', async () => {
    const response = await api.request('POST', '/v1/auth/token', {
      json: { email: 'not-an-email', password: 'hunter2-secret', expires_in_days: 9999 },
    });
    expectProblem(response, 400, 'validation-failed');
    expect(response.text).not.toContain('hunter2-secret');
    expect(response.json<{ detail: string }>().detail).toMatch(
      /body\.email.*body\.expires_in_days/,
    );
  });

  it('refuses unknown fields and missing credentials', async () => {
    const extra = await api.request('POST', '/v1/auth/token', {
      json: { email: 'a@example.test', password: 'x', remember_me: true },
    });
    expectProblem(extra, 400, 'validation-failed');
    expect(extra.json<{ detail: string }>().detail).toContain('remember_me');
    expectProblem(
      await api.request('POST', '/v1/auth/token', { json: {} }),
      400,
      'validation-failed',
    );
  });

  it('limits attempts per email and address with 429 and Retry-After, even with the right password', async () => {
    const user = await api.createUser();
    const other = await api.createUser();
    const wrong = { ...user, password: 'wrong-password' };
    for (let i = 0; i < 3; i += 1) expectProblem(await mint(wrong), 401, 'unauthenticated');
    const limited = await mint(user);
    expectProblem(limited, 429, 'rate-limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(600);
    // Another account from the same address has its own bucket.
    expect((await mint(other)).status).toBe(201);
  });
});

describe('bearer authentication', () => {
  it('answers 401 with WWW-Authenticate when the header is missing or not Bearer', async () => {
    const variants: Record<string, string>[] = [
      {},
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer' },
    ];
    for (const headers of variants) {
      const response = await api.request('GET', '/v1/keys', { headers });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="minimcp"');
    }
  });

  it('answers 401 for an unknown, an expired and a revoked token alike', async () => {
    const expired = await api.createUserWithToken();
    await api.db.owner.query(
      sql.unsafe`UPDATE user_api_tokens SET expires_at = now() - interval '1 second' WHERE id = ${expired.tokenId}`,
    );
    const revoked = await api.createUserWithToken();
    await api.db.owner.query(
      sql.unsafe`UPDATE user_api_tokens SET revoked_at = now() WHERE id = ${revoked.tokenId}`,
    );
    for (const token of ['mmu_doesnotexist', 'mcp_an-access-token', expired.token, revoked.token]) {
      const response = await api.request('GET', '/v1/me', { token });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.json<{ detail: string }>().detail).toBe(
        'The API token is invalid, expired or revoked.',
      );
    }
  });

  it('records last use at most once a minute', async () => {
    const user = await api.createUserWithToken();
    expect((await tokenRow(user.tokenId)).last_used_at).toBeNull();
    await api.request('GET', '/v1/me', { token: user.token });
    const first = (await tokenRow(user.tokenId)).last_used_at;
    expect(first).toBeInstanceOf(Date);
    await api.request('GET', '/v1/me', { token: user.token });
    expect((await tokenRow(user.tokenId)).last_used_at).toEqual(first);
    await api.db.owner.query(
      sql.unsafe`UPDATE user_api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = ${user.tokenId}`,
    );
    const stale = (await tokenRow(user.tokenId)).last_used_at!;
    await api.request('GET', '/v1/me', { token: user.token });
    expect((await tokenRow(user.tokenId)).last_used_at!.getTime()).toBeGreaterThan(stale.getTime());
  });

  it('accepts the bootstrap admin token as an admin without a user', async () => {
    const me = await api.request('GET', '/v1/me', { token: api.adminToken });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      principal: 'bootstrap-admin',
      role: 'admin',
      user: null,
      token: null,
    });
    expectProblem(
      await api.request('GET', '/v1/me', { token: `${api.adminToken}x` }),
      401,
      'unauthenticated',
    );
  });

  it('refuses the bootstrap admin token on routes that need a user, with 403', async () => {
    for (const [method, path] of [
      ['GET', '/v1/tokens'],
      ['GET', '/v1/keys'],
    ] as const) {
      const response = await api.request(method, path, { token: api.adminToken });
      expectProblem(response, 403, 'forbidden');
      expect(response.json<{ detail: string }>().detail).toContain('POST /v1/users');
    }
  });
});

describe('POST/GET/DELETE /v1/tokens', () => {
  it('mints a named token for the calling user', async () => {
    const user = await api.createUserWithToken();
    const response = await api.request('POST', '/v1/tokens', {
      token: user.token,
      json: { name: 'ci', expires_in_days: 1 },
    });
    expect(response.status).toBe(201);
    const issued = response.json<{ token: string; name: string }>();
    expect(issued.name).toBe('ci');
    const me = await api.request('GET', '/v1/me', { token: issued.token });
    expect(me.json<{ user: { id: string } }>().user.id).toBe(user.id);
  });

  it('lists the user’s tokens without the token or its hash', async () => {
    const user = await api.createUserWithToken();
    const second = (
      await api.request('POST', '/v1/tokens', { token: user.token, json: { name: 'second' } })
    ).json<{ id: string; token: string }>();
    const other = await api.createUserWithToken();
    const response = await api.request('GET', '/v1/tokens', { token: user.token });
    expect(response.status).toBe(200);
    const { tokens } = response.json<{
      tokens: { id: string; name: string; expired: boolean }[];
    }>();
    expect(tokens.map((t) => t.id).sort()).toEqual([user.tokenId, second.id].sort());
    expect(tokens.every((t) => t.expired === false)).toBe(true);
    expect(response.text).not.toContain(second.token);
    expect(response.text).not.toContain(user.token);
    expect(response.text).not.toContain(hashToken(second.token));
    expect(response.text).not.toContain(other.tokenId);
  });

  it('revokes a token: 204, it stops working, and it leaves the list', async () => {
    const user = await api.createUserWithToken();
    const extra = (
      await api.request('POST', '/v1/tokens', { token: user.token, json: { name: 'temp' } })
    ).json<{ id: string; token: string }>();
    const response = await api.request('DELETE', `/v1/tokens/${extra.id}`, { token: user.token });
    expect(response.status).toBe(204);
    expect(response.text).toBe('');
    expectProblem(
      await api.request('GET', '/v1/me', { token: extra.token }),
      401,
      'unauthenticated',
    );
    expect((await tokenRow(extra.id)).revoked_at).toBeInstanceOf(Date);
    const list = await api.request('GET', '/v1/tokens', { token: user.token });
    expect(list.text).not.toContain(extra.id);
    // Revoking again is harmless.
    expect(
      (await api.request('DELETE', `/v1/tokens/${extra.id}`, { token: user.token })).status,
    ).toBe(204);
  });

  it('lets a token revoke itself', async () => {
    const user = await api.createUserWithToken();
    expect(
      (await api.request('DELETE', `/v1/tokens/${user.tokenId}`, { token: user.token })).status,
    ).toBe(204);
    expectProblem(
      await api.request('GET', '/v1/tokens', { token: user.token }),
      401,
      'unauthenticated',
    );
  });

  it('answers 404 for another user’s token and leaves it working', async () => {
    const owner = await api.createUserWithToken();
    const intruder = await api.createUserWithToken();
    const response = await api.request('DELETE', `/v1/tokens/${owner.tokenId}`, {
      token: intruder.token,
    });
    expectProblem(response, 404, 'not-found');
    expect((await api.request('GET', '/v1/me', { token: owner.token })).status).toBe(200);
    expect((await tokenRow(owner.tokenId)).revoked_at).toBeNull();
  });

  it('answers 400 for a malformed token id and 404 for an unknown one', async () => {
    const user = await api.createUserWithToken();
    const bad = await api.request('DELETE', '/v1/tokens/not-a-uuid', { token: user.token });
    expectProblem(bad, 400, 'validation-failed');
    expect(bad.json<{ detail: string }>().detail).toBe('path.id: Invalid UUID (got "not-a-uuid")');
    const unknown = await api.request('DELETE', '/v1/tokens/6f1c2b7e-3d0a-4c55-9a39-7c7e5d3b1a20', {
      token: user.token,
    });
    expectProblem(unknown, 404, 'not-found');
  });

  it('validates the token name and lifetime', async () => {
    const user = await api.createUserWithToken();
    for (const json of [
      {},
      { name: '' },
      { name: 'x'.repeat(101) },
      { name: 'ok', expires_in_days: 0 },
      { name: 'ok', expires_in_days: 1.5 },
    ]) {
      expectProblem(
        await api.request('POST', '/v1/tokens', { token: user.token, json }),
        400,
        'validation-failed',
      );
    }
  });
});
