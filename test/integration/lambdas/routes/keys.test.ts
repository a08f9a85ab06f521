// API keys over real HTTP: stored envelope-encrypted under the user and type,
// shown only as a hint, validated against the type's pattern, and invisible
// to every other user (row-level security; 404, never 403).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { DecryptionError } from '../../../../core/errors.js';
import { ApiKeyRow, findApiKeyById, envelopeFromRow } from '../../../../core/db/api-keys.js';
import { asUser } from '../../../../lambdas/control/db/user-context.js';
import {
  expectInvisibleTo,
  expectProblem,
  startTestApi,
  type TestApi,
} from '../../../support/api.js';

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});

const githubKey = (fill: string) => `ghp_${fill.repeat(36).slice(0, 36)}`;

async function storedKey(userId: string, type: string) {
  return api.db.owner.maybeOne(sql.type(ApiKeyRow)`
    SELECT ak.* FROM api_keys ak JOIN mcp_types mt ON mt.id = ak.mcp_type_id
    WHERE ak.user_id = ${userId} AND mt.name = ${type}`);
}

const envelopeOf = envelopeFromRow;

type KeyView = { type: string; hint: string; active: boolean; expires_at: string | null };

describe('PUT /v1/keys/{type}', () => {
  it('stores the key envelope-encrypted under the user and type, answering with the hint only', async () => {
    const user = await api.createUserWithToken();
    const key = githubKey('a1B2');
    const response = await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key },
    });
    expect(response.status).toBe(200);
    expect(response.json<KeyView>()).toMatchObject({
      type: 'github',
      hint: `…${key.slice(-4)}`,
      active: true,
      expires_at: null,
    });
    expect(response.text).not.toContain(key);

    const row = (await storedKey(user.id, 'github'))!;
    expect(row.encrypted_key).not.toContain(key);
    expect(row.key_provider).toBe('local');
    expect(row.encryption_iv).toMatch(/^[0-9a-f]{24}$/);
    expect(await api.cipher.decrypt(envelopeOf(row), { userId: user.id, mcpType: 'github' })).toBe(
      key,
    );
    await expect(
      api.cipher.decrypt(envelopeOf(row), { userId: user.id, mcpType: 'figma' }),
    ).rejects.toBeInstanceOf(DecryptionError);
  });

  it('replaces the key on a second PUT (one key per user and type)', async () => {
    const user = await api.createUserWithToken();
    await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('old1') },
    });
    const first = (await storedKey(user.id, 'github'))!;
    const key = githubKey('new2');
    const response = await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key },
    });
    expect(response.status).toBe(200);
    expect(response.json<KeyView>().hint).toBe('…new2');
    const second = (await storedKey(user.id, 'github'))!;
    expect(second.id).toBe(first.id);
    expect(second.wrapped_data_key).not.toBe(first.wrapped_data_key);
    expect(
      await api.cipher.decrypt(envelopeOf(second), { userId: user.id, mcpType: 'github' }),
    ).toBe(key);
  });

  it('accepts a future expiry and refuses a past one', async () => {
    const user = await api.createUserWithToken();
    const future = new Date(Date.now() + 86_400_000).toISOString();
    const ok = await api.request('PUT', '/v1/keys/figma', {
      token: user.token,
      json: { key: 'figd_abcdefghijklmnop', expires_at: future },
    });
    expect(ok.status).toBe(200);
    expect(ok.json<KeyView>().expires_at).toBe(future);
    const past = await api.request('PUT', '/v1/keys/figma', {
      token: user.token,
      json: { key: 'figd_abcdefghijklmnop', expires_at: '2020-01-01T00:00:00Z' },
    });
    expectProblem(past, 400, 'validation-failed');
    expect(past.json<{ detail: string }>().detail).toContain('2020-01-01T00:00:00Z');
  });

  it('refuses a key that does not match the type’s pattern, without echoing it', async () => {
    const user = await api.createUserWithToken();
    const response = await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: 'not-a-github-token-secret' },
    });
    expectProblem(response, 400, 'validation-failed');
    expect(response.json<{ detail: string }>().detail).toContain('github');
    expect(response.text).not.toContain('not-a-github-token-secret');
    expect(await storedKey(user.id, 'github')).toBeNull();
  });

  it('refuses a key for a type that takes none, an unknown type and a malformed type name', async () => {
    const user = await api.createUserWithToken();
    const json = { key: 'anything-at-all' };
    const demo = await api.request('PUT', '/v1/keys/demo', { token: user.token, json });
    expectProblem(demo, 400, 'validation-failed');
    expect(demo.json<{ detail: string }>().detail).toBe('MCP type "demo" takes no API key');
    expectProblem(
      await api.request('PUT', '/v1/keys/slack', { token: user.token, json }),
      404,
      'not-found',
    );
    const bad = await api.request('PUT', '/v1/keys/Not%20A%20Type', { token: user.token, json });
    expectProblem(bad, 400, 'validation-failed');
    expect(bad.json<{ detail: string }>().detail).toContain('path.type');
  });

  it('refuses an empty key, an oversized key, wrong types and unknown fields', async () => {
    const user = await api.createUserWithToken();
    for (const json of [
      {},
      { key: '' },
      { key: 'x'.repeat(8193) },
      { key: 42 },
      { key: githubKey('abcd'), expires_at: 'tomorrow' },
      { key: githubKey('abcd'), note: 'mine' },
      [githubKey('abcd')],
    ]) {
      const response = await api.request('PUT', '/v1/keys/github', { token: user.token, json });
      expectProblem(response, 400, 'validation-failed');
    }
  });

  it('needs a user: 401 without a token, 403 for the bootstrap admin token', async () => {
    const json = { key: githubKey('abcd') };
    expectProblem(await api.request('PUT', '/v1/keys/github', { json }), 401, 'unauthenticated');
    expectProblem(
      await api.request('PUT', '/v1/keys/github', { token: api.adminToken, json }),
      403,
      'forbidden',
    );
  });
});

describe('GET /v1/keys', () => {
  it('lists type, hint, dates and whether the key is usable, never the key', async () => {
    const user = await api.createUserWithToken();
    const gh = githubKey('list');
    await api.request('PUT', '/v1/keys/github', { token: user.token, json: { key: gh } });
    await api.request('PUT', '/v1/keys/figma', {
      token: user.token,
      json: {
        key: 'figd_expiring-soon-key',
        expires_at: new Date(Date.now() + 60_000).toISOString(),
      },
    });
    await api.db.owner.query(sql.unsafe`
      UPDATE api_keys SET expires_at = now() - interval '1 minute'
      WHERE user_id = ${user.id} AND mcp_type_id = (SELECT id FROM mcp_types WHERE name = 'figma')`);
    const response = await api.request('GET', '/v1/keys', { token: user.token });
    expect(response.status).toBe(200);
    const { keys } = response.json<{
      keys: (KeyView & { created_at: string; updated_at: string })[];
    }>();
    expect(keys.map((k) => [k.type, k.hint, k.active])).toEqual([
      ['figma', '…-key', false],
      ['github', '…list', true],
    ]);
    expect(Date.parse(keys[1]!.created_at)).not.toBeNaN();
    expect(response.text).not.toContain(gh);
    expect(response.text).not.toContain('figd_expiring-soon-key');
  });
});

describe('DELETE /v1/keys/{type}', () => {
  it('deletes the key (204) and then answers 404', async () => {
    const user = await api.createUserWithToken();
    await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('gone') },
    });
    const response = await api.request('DELETE', '/v1/keys/github', { token: user.token });
    expect(response.status).toBe(204);
    expect(await storedKey(user.id, 'github')).toBeNull();
    expectProblem(
      await api.request('DELETE', '/v1/keys/github', { token: user.token }),
      404,
      'not-found',
    );
    expectProblem(
      await api.request('DELETE', '/v1/keys/slack', { token: user.token }),
      404,
      'not-found',
    );
  });
});

describe('isolation between users (row-level security)', () => {
  it('keeps one user’s key invisible to another: list, read by id, change and delete', async () => {
    const alice = await api.createUserWithToken();
    const bob = await api.createUserWithToken();
    const aliceKey = githubKey('AL1C');
    await api.request('PUT', '/v1/keys/github', { token: alice.token, json: { key: aliceKey } });
    const aliceRow = (await storedKey(alice.id, 'github'))!;

    // Bob's list is empty, and nothing of Alice's key shows.
    const list = await api.request('GET', '/v1/keys', { token: bob.token });
    expect(list.json<{ keys: unknown[] }>().keys).toEqual([]);
    expect(list.text).not.toContain('AL1C');

    // Deleting "github" as Bob finds nothing: 404, not 403.
    await expectInvisibleTo(api, bob.token, [{ method: 'DELETE', path: '/v1/keys/github' }]);

    // Bob's PUT stores Bob's own key; Alice's row is untouched.
    await api.request('PUT', '/v1/keys/github', {
      token: bob.token,
      json: { key: githubKey('B0B0') },
    });
    const after = (await storedKey(alice.id, 'github'))!;
    expect(after.encrypted_key).toBe(aliceRow.encrypted_key);
    expect(after.updated_at).toEqual(aliceRow.updated_at);

    // At the database: as Bob, Alice's key does not exist, even by id, and cannot be changed.
    const seen = await asUser(api.db.app, bob.id, (tx) => findApiKeyById(tx, aliceRow.id));
    expect(seen).toBeNull();
    const changed = await asUser(api.db.app, bob.id, (tx) =>
      tx.query(sql.unsafe`UPDATE api_keys SET is_active = false WHERE id = ${aliceRow.id}`),
    );
    expect(changed.rowCount).toBe(0);
    const removed = await asUser(api.db.app, bob.id, (tx) =>
      tx.query(sql.unsafe`DELETE FROM api_keys WHERE id = ${aliceRow.id}`),
    );
    expect(removed.rowCount).toBe(0);

    // Alice still has her key, and it still decrypts only under her id.
    const mine = await api.request('GET', '/v1/keys', { token: alice.token });
    expect(mine.json<{ keys: KeyView[] }>().keys).toMatchObject([
      { type: 'github', hint: '…AL1C' },
    ]);
    await expect(
      api.cipher.decrypt(envelopeOf(after), { userId: bob.id, mcpType: 'github' }),
    ).rejects.toBeInstanceOf(DecryptionError);
  });
});
