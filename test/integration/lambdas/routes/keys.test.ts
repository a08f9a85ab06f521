// API keys over real HTTP: stored envelope-encrypted under the user and type,
// shown only as a hint with their usage, validated against the type's pattern,
// disabled and enabled without being deleted, audited on every change, their
// scopes checked against a fake GitHub, and invisible to every other user
// (row-level security; 404, never 403).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { DecryptionError } from '../../../../core/errors.js';
import { ApiKeyRow, findApiKeyById, envelopeFromRow } from '../../../../core/db/api-keys.js';
import { asUser } from '../../../../lambdas/control/db/user-context.js';
import type { ScopeCheck } from '../../../../lambdas/control/key-scopes.js';
import {
  startFakeUpstream,
  type FakeReply,
  type FakeUpstream,
} from '../../../support/fake-upstream.js';
import { makeInstance } from '../../../support/fixtures.js';
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

type KeyView = {
  type: string;
  hint: string;
  enabled: boolean;
  active: boolean;
  expires_at: string | null;
  active_instances: number;
  last_used: string | null;
};

const KeyEvent = z.object({
  event_type: z.string(),
  api_key_id: z.string(),
  event_data: z.record(z.string(), z.unknown()),
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
});

/** The user's key audit trail, oldest first. */
async function keyEvents(userId: string) {
  return api.db.owner.any(sql.type(KeyEvent)`
    SELECT event_type, api_key_id, event_data, host(ip_address) AS ip_address, user_agent
    FROM api_key_events WHERE user_id = ${userId} ORDER BY created_at, id`);
}

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

describe('the key answers: enabled, usage and the audit trail', () => {
  it('answers a stored key as enabled and unused, and records who stored or replaced it', async () => {
    const user = await api.createUserWithToken();
    const first = await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('aud1') },
      headers: { 'user-agent': 'keys-test/1.0' },
    });
    expect(first.json<KeyView>()).toMatchObject({
      enabled: true,
      active: true,
      active_instances: 0,
      last_used: null,
    });
    await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('aud2') },
    });
    const events = await keyEvents(user.id);
    expect(events).toEqual([
      {
        event_type: 'stored',
        api_key_id: expect.any(String),
        event_data: { type: 'github', hint: '…aud1', replaced: false, expires_at: null },
        ip_address: '127.0.0.1',
        user_agent: 'keys-test/1.0',
      },
      expect.objectContaining({
        event_type: 'stored',
        event_data: expect.objectContaining({ hint: '…aud2', replaced: true }),
      }),
    ]);
    expect(JSON.stringify(events)).not.toContain(githubKey('aud1'));
  });

  it('lists each key with its running instances and its last use (the schema document’s key-usage query)', async () => {
    const user = await api.createUserWithToken();
    await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('used') },
    });
    const keyId = (await storedKey(user.id, 'github'))!.id;
    const running = await makeInstance(api.db.owner, { userId: user.id, type: 'github' });
    const expired = await makeInstance(api.db.owner, { userId: user.id, type: 'github' });
    await api.db.owner.query(sql.unsafe`
      UPDATE mcp_instances SET api_key_id = ${keyId},
        status = CASE WHEN id = ${running.id} THEN 'running' ELSE 'expired' END
      WHERE id IN (${running.id}, ${expired.id})`);
    const response = await api.request('GET', '/v1/keys', { token: user.token });
    expect(response.json<{ keys: KeyView[] }>().keys).toEqual([
      expect.objectContaining({
        type: 'github',
        active_instances: 1,
        last_used: expired.created_at.toISOString(),
      }),
    ]);
  });

  it('keeps the trail of a deleted key, with its hint only', async () => {
    const user = await api.createUserWithToken();
    await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('del1') },
    });
    const keyId = (await storedKey(user.id, 'github'))!.id;
    await api.request('DELETE', '/v1/keys/github', { token: user.token });
    expect(
      (await keyEvents(user.id)).map((e) => [e.event_type, e.api_key_id, e.event_data]),
    ).toEqual([
      ['stored', keyId, expect.objectContaining({ hint: '…del1' })],
      ['deleted', keyId, { type: 'github', hint: '…del1' }],
    ]);
  });
});

describe('POST /v1/keys/{type}/disable and /enable', () => {
  const disable = (token: string, type = 'github') =>
    api.request('POST', `/v1/keys/${type}/disable`, { token });
  const enable = (token: string, type = 'github') =>
    api.request('POST', `/v1/keys/${type}/enable`, { token });

  it('disables the key without deleting it, and enables it again; an event per change, none for a repeat', async () => {
    const user = await api.createUserWithToken();
    const key = githubKey('tog1');
    await api.request('PUT', '/v1/keys/github', { token: user.token, json: { key } });
    const before = (await storedKey(user.id, 'github'))!;

    const off = await disable(user.token);
    expect(off.status).toBe(200);
    expect(off.json<KeyView>()).toMatchObject({ type: 'github', enabled: false, active: false });
    const row = (await storedKey(user.id, 'github'))!;
    expect(row.is_active).toBe(false);
    expect(row.encrypted_key).toBe(before.encrypted_key);
    expect((await disable(user.token)).json<KeyView>().enabled).toBe(false);

    const on = await enable(user.token);
    expect(on.status).toBe(200);
    expect(on.json<KeyView>()).toMatchObject({ enabled: true, active: true });
    expect(await api.cipher.decrypt(envelopeOf(row), { userId: user.id, mcpType: 'github' })).toBe(
      key,
    );
    expect((await keyEvents(user.id)).map((e) => [e.event_type, e.event_data])).toEqual([
      ['stored', expect.anything()],
      ['disabled', { type: 'github', hint: '…tog1' }],
      ['enabled', { type: 'github', hint: '…tog1' }],
    ]);
  });

  it('refuses an instance of a disabled key with a problem that says so and how to enable it', async () => {
    const user = await api.createUserWithToken();
    await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('off1') },
    });
    await disable(user.token);
    const created = await api.request('POST', '/v1/instances', {
      token: user.token,
      json: { type: 'github' },
    });
    expectProblem(created, 409, 'key-missing');
    expect(created.json<{ detail: string }>().detail).toBe(
      'your github key (…off1) is disabled: enable it with POST /v1/keys/github/enable, or store a new one with PUT /v1/keys/github',
    );
  });

  it('refuses an instance of an expired key with a problem that says when it expired', async () => {
    const user = await api.createUserWithToken();
    await api.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key: githubKey('exp1') },
    });
    await api.db.owner.query(sql.unsafe`
      UPDATE api_keys SET expires_at = '2026-01-02T03:04:05Z' WHERE user_id = ${user.id}`);
    const created = await api.request('POST', '/v1/instances', {
      token: user.token,
      json: { type: 'github' },
    });
    expectProblem(created, 409, 'key-missing');
    expect(created.json<{ detail: string }>().detail).toBe(
      'your github key (…exp1) expired at 2026-01-02T03:04:05.000Z: store a new one with PUT /v1/keys/github',
    );
    // Enabling does not bring back an expired key.
    expect((await enable(user.token)).json<KeyView>()).toMatchObject({
      enabled: true,
      active: false,
    });
  });

  it('answers 404 for no key, an unknown type, or another user’s key; 401 without a token', async () => {
    const alice = await api.createUserWithToken();
    const bob = await api.createUserWithToken();
    await api.request('PUT', '/v1/keys/github', {
      token: alice.token,
      json: { key: githubKey('AL1C') },
    });
    await expectInvisibleTo(api, bob.token, [
      { method: 'POST', path: '/v1/keys/github/disable' },
      { method: 'POST', path: '/v1/keys/github/enable' },
      { method: 'POST', path: '/v1/keys/slack/disable' },
    ]);
    expect((await storedKey(alice.id, 'github'))!.is_active).toBe(true);
    expect(await keyEvents(bob.id)).toEqual([]);
    expectProblem(await api.request('POST', '/v1/keys/github/disable'), 401, 'unauthenticated');
  });
});

describe('the scope check on PUT (against a fake GitHub)', () => {
  let github: FakeUpstream;
  let checking: TestApi;

  beforeAll(async () => {
    github = await startFakeUpstream();
    checking = await startTestApi({
      db: api.db,
      env: {
        MINIMCP_SCOPE_CHECK_TIMEOUT_MS: '500',
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: `${github.url}/api/v3/` }),
      },
    });
  });
  afterAll(async () => {
    await checking?.close();
    await github?.close();
  });

  type Stored = KeyView & { scopes: Omit<ScopeCheck, 'warnings'>; warnings: string[] };

  /** Stores `key` as a new user, GitHub answering GET /user with `reply`. */
  async function store(key: string, reply: FakeReply) {
    const user = await checking.createUserWithToken();
    github.expect(
      {
        method: 'GET',
        path: '/api/v3/user',
        headers: { authorization: `Bearer ${key}`, 'user-agent': 'minimcp' },
      },
      reply,
    );
    const started = Date.now();
    const response = await checking.request('PUT', '/v1/keys/github', {
      token: user.token,
      json: { key },
    });
    const elapsed = Date.now() - started;
    github.verify();
    expect(response.status).toBe(200);
    expect(response.text).not.toContain(key);
    // Stored whatever GitHub said.
    expect(await storedKey(user.id, 'github')).not.toBeNull();
    return { body: response.json<Stored>(), elapsed };
  }

  const user = { login: 'octocat' };

  it('reads a classic token’s scopes from X-OAuth-Scopes: all there, no warning', async () => {
    const { body } = await store(githubKey('all1'), {
      json: user,
      headers: { 'x-oauth-scopes': 'repo, read:user, gist' },
    });
    expect(body.scopes).toEqual({
      checked: true,
      required: ['repo', 'read:user'],
      granted: ['repo', 'read:user', 'gist'],
      missing: [],
      reason: null,
    });
    expect(body.warnings).toEqual([]);
  });

  it('counts a scope implied by a broader one (user covers read:user)', async () => {
    const { body } = await store(githubKey('imp1'), {
      json: user,
      headers: { 'x-oauth-scopes': 'repo, user' },
    });
    expect(body.scopes.missing).toEqual([]);
  });

  it('warns about each missing scope and still stores the key', async () => {
    const { body } = await store(githubKey('mis1'), {
      json: user,
      headers: { 'x-oauth-scopes': 'public_repo' },
    });
    expect(body.scopes).toMatchObject({ checked: true, missing: ['repo', 'read:user'] });
    expect(body.warnings).toHaveLength(2);
    expect(body.warnings[0]).toContain('the token lacks the GitHub scope "repo"');
    expect(body.warnings[0]).toContain('(it has: public_repo)');
  });

  it('says a fine-grained token reports no scopes (no header), without a warning', async () => {
    const { body } = await store(`github_pat_${'F'.repeat(30)}`, { json: user });
    expect(body.scopes).toMatchObject({ checked: false, granted: null, missing: [] });
    expect(body.scopes.reason).toContain('fine-grained');
    expect(body.warnings).toEqual([]);
  });

  it('warns when GitHub refuses the token (401)', async () => {
    const { body } = await store(githubKey('bad1'), {
      status: 401,
      json: { message: 'Bad credentials' },
    });
    expect(body.scopes.checked).toBe(false);
    expect(body.warnings).toEqual([expect.stringContaining('GitHub refused this token (HTTP 401')]);
  });

  it('gives up after the timeout with a warning, and stores the key', async () => {
    const { body, elapsed } = await store(githubKey('slow'), { hang: true });
    expect(body.scopes.checked).toBe(false);
    expect(body.warnings).toEqual([expect.stringContaining('did not answer within 500 ms')]);
    expect(elapsed).toBeLessThan(3_000);
  });

  it('warns when GitHub cannot be reached at all', async () => {
    const closed = await startFakeUpstream();
    await closed.close();
    const unreachable = await startTestApi({
      db: api.db,
      env: {
        MINIMCP_SCOPE_CHECK_TIMEOUT_MS: '500',
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: closed.url }),
      },
    });
    try {
      const owner = await unreachable.createUserWithToken();
      const key = githubKey('gone');
      const response = await unreachable.request('PUT', '/v1/keys/github', {
        token: owner.token,
        json: { key },
      });
      expect(response.status).toBe(200);
      expect(response.json<Stored>().warnings).toEqual([
        expect.stringContaining('could not be reached'),
      ]);
      expect(await storedKey(owner.id, 'github')).not.toBeNull();
      expect(unreachable.logs.join('\n')).not.toContain(key);
    } finally {
      await unreachable.close();
    }
  });

  it('says why types whose upstream cannot tell are not checked, asking no one', async () => {
    const owner = await checking.createUserWithToken();
    const asked = github.requests.length;
    const figma = await checking.request('PUT', '/v1/keys/figma', {
      token: owner.token,
      json: { key: 'figd_abcdefghijklmnop' },
    });
    expect(figma.json<Stored>().scopes).toEqual({
      checked: false,
      required: ['file_content:read', 'file_comments:write'],
      granted: null,
      missing: [],
      reason: "not checked: Figma's API does not report the scopes of a personal access token",
    });
    const gmail = await checking.request('PUT', '/v1/keys/gmail', {
      token: owner.token,
      json: { key: 'ya29.an-access-token' },
    });
    expect(gmail.json<Stored>().scopes.reason).toMatch(/^not checked: a gmail key may be/);
    expect(gmail.json<Stored>().warnings).toEqual([]);
    github.verify();
    expect(github.requests).toHaveLength(asked);
  });

  it('does not ask when the operator turned the check off (MINIMCP_SCOPE_CHECK_TIMEOUT_MS=0)', async () => {
    const owner = await api.createUserWithToken();
    const response = await api.request('PUT', '/v1/keys/github', {
      token: owner.token,
      json: { key: githubKey('off0') },
    });
    expect(response.json<Stored>().scopes.reason).toBe(
      'not checked: the operator turned the scope check off',
    );
  });
});
