// The end of an account over real HTTP: an admin soft-deletes a user (their
// instances stop through the agents, tokens and keys revoked, login refused),
// and a user exports (no secret in it) or erases their own data.
import { describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import {
  accountEvents,
  accountsHarnessForFile,
  expectLockedOut,
} from '../../../support/accounts.js';
import { expectProblem, type TestUserWithToken } from '../../../support/api.js';
import { instanceRow } from '../../../support/instance-harness.js';
import { insertLogs } from '../../../support/queries.js';
import { findLeaks, secretForms } from '../../../support/secret-scan.js';
import { EXPORT_LIMITS } from '../../../../lambdas/control/account-export.js';

const t = accountsHarnessForFile();

const FIGMA_KEY = 'figd_account-test-secret-0123456789abcdef';

/** A user with a token, a stored key and two running instances. */
async function busyUser(): Promise<
  TestUserWithToken & { instances: { id: string; token: string }[] }
> {
  const user = await t.api.createUserWithToken();
  const stored = await t.api.request('PUT', '/v1/keys/figma', {
    token: user.token,
    json: { key: FIGMA_KEY },
  });
  expect(stored.status).toBeLessThan(300);
  const instances: { id: string; token: string }[] = [];
  for (let i = 0; i < 2; i++) {
    const created = await t.api.request('POST', '/v1/instances', {
      token: user.token,
      json: { type: 'demo' },
      headers: { 'user-agent': 'jest/accounts' },
    });
    expect(created.status).toBe(201);
    const body = created.json<{ id: string; access_token: string }>();
    instances.push({ id: body.id, token: body.access_token });
  }
  return { ...user, instances };
}

/** One line of the instance's server output, written as the log shipper writes it. */
async function logLine(instanceId: string, message: string): Promise<void> {
  await insertLogs(t.api.db.owner, [
    { instanceId, timestamp: new Date(), level: 'info', source: 'process', message },
  ]);
}

const Deleted = z.object({ event_data: z.record(z.string(), z.unknown()) });

async function deletedEvent(instanceId: string) {
  return t.api.db.owner.one(sql.type(Deleted)`
    SELECT event_data FROM mcp_events WHERE mcp_instance_id = ${instanceId} AND event_type = 'deleted'
  `);
}

/** Runs a `SELECT count(*)::int …` through the owner pool (no row-level security). */
async function countOf(query: ReturnType<typeof sql.unsafe>): Promise<number> {
  return z.number().parse(await t.api.db.owner.oneFirst(query));
}

describe('DELETE /v1/users/{id}', () => {
  it('stops the user’s instances through their agent, revokes tokens and keys, refuses login, and names the admin', async () => {
    const admin = await t.api.createUserWithToken({ role: 'admin' });
    const user = await busyUser();

    const response = await t.api.request('DELETE', `/v1/users/${user.id}`, { token: admin.token });

    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({
      user: { id: user.id, active: false },
      instances_stopped: 2,
    });
    const stopped = t.node.fake.calls.stopInstance.map((call) => call.instanceId);
    for (const instance of user.instances) {
      expect(stopped).toContain(instance.id);
      expect((await instanceRow(t.api.db.owner, instance.id)).deleted_at).not.toBeNull();
      expect((await deletedEvent(instance.id)).event_data).toMatchObject({
        cause: { reason: 'user_deleted', actor: 'admin', actor_user_id: admin.id },
      });
    }
    await expectLockedOut(t.api, user);
    expect(
      await countOf(
        sql.unsafe`SELECT count(*)::int FROM api_keys WHERE user_id = ${user.id} AND is_active`,
      ),
    ).toBe(0);
    expect(
      await countOf(
        sql.unsafe`SELECT count(*)::int FROM user_api_tokens WHERE user_id = ${user.id} AND revoked_at IS NULL`,
      ),
    ).toBe(0);
    expect(await accountEvents(t.api, user.id)).toEqual([
      {
        event_type: 'deleted',
        actor: 'admin',
        actor_user_id: admin.id,
        event_data: { tokens_revoked: 1, keys_deactivated: 1 },
      },
    ]);
    const listed = await t.api.request('GET', '/v1/users', { token: admin.token });
    expect(listed.json<{ users: { id: string }[] }>().users.map((u) => u.id)).not.toContain(
      user.id,
    );
  });

  it('answers the same when repeated, without a second event', async () => {
    const user = await busyUser();
    await t.api.request('DELETE', `/v1/users/${user.id}`, { token: t.api.adminToken });
    const again = await t.api.request('DELETE', `/v1/users/${user.id}`, {
      token: t.api.adminToken,
    });
    expect(again.status).toBe(200);
    expect(again.json()).toMatchObject({ instances_stopped: 0 });
    expect((await accountEvents(t.api, user.id)).map((e) => [e.event_type, e.actor])).toEqual([
      ['deleted', 'bootstrap-admin'],
    ]);
  });

  it('is for admins only, 404 for no such user, and 409 for an admin’s own account', async () => {
    const user = await t.api.createUserWithToken();
    const admin = await t.api.createUserWithToken({ role: 'admin' });
    expectProblem(
      await t.api.request('DELETE', `/v1/users/${admin.id}`, { token: user.token }),
      403,
      'forbidden',
    );
    expectProblem(
      await t.api.request('DELETE', '/v1/users/00000000-0000-4000-8000-000000000000', {
        token: admin.token,
      }),
      404,
      'not-found',
    );
    expectProblem(
      await t.api.request('DELETE', `/v1/users/${admin.id}`, { token: admin.token }),
      409,
      'conflict',
    );
  });
});

describe('GET /v1/me/export', () => {
  it('holds the account, keys’ metadata, instances, events and recent logs, and no secret', async () => {
    const user = await busyUser();
    await logLine(user.instances[0]!.id, 'hello from the export test');

    const response = await t.api.request('GET', '/v1/me/export', { token: user.token });

    expect(response.status).toBe(200);
    const body = response.json<
      Record<string, unknown[]> & { account: unknown; truncated: unknown }
    >();
    expect(body.account).toMatchObject({ id: user.id, email: user.email, email_verified: false });
    expect(body.keys).toEqual([expect.objectContaining({ type: 'figma', active: true })]);
    expect(body.tokens).toEqual([expect.objectContaining({ id: user.tokenId, name: 'fixture' })]);
    expect(body.instances!.map((i) => (i as { id: string }).id).sort()).toEqual(
      user.instances.map((i) => i.id).sort(),
    );
    expect(body.events!.map((e) => (e as { type: string }).type)).toEqual(
      expect.arrayContaining(['created', 'started']),
    );
    expect(body.logs).toEqual([expect.objectContaining({ message: 'hello from the export test' })]);
    expect(body.truncated).toEqual({
      tokens: false,
      instances: false,
      events: false,
      account_events: false,
      logs: false,
    });

    const envelope = await t.api.db.owner.one(
      sql.type(
        z.object({ encrypted_key: z.string(), wrapped_data_key: z.string() }),
      )`SELECT encrypted_key, wrapped_data_key FROM api_keys WHERE user_id = ${user.id}`,
    );
    const secrets = [
      FIGMA_KEY,
      user.token,
      ...user.instances.map((i) => i.token),
      envelope.encrypted_key,
      envelope.wrapped_data_key,
    ];
    const leaks = secrets.flatMap((secret) =>
      findLeaks(secretForms(secret), [{ where: 'export', text: response.text }]),
    );
    expect(leaks).toEqual([]);
    expect(response.text).not.toMatch(/token_hash|access_token_hash|password_hash/);
  });

  it('is bounded: logs older than the window are left out, and a cut section says so', async () => {
    const user = await busyUser();
    const instanceId = user.instances[0]!.id;
    const now = Date.now();
    const lines = Array.from({ length: EXPORT_LIMITS.logs + 1 }, (_, i) => ({
      instanceId,
      timestamp: new Date(now - i * 1000),
      level: 'info' as const,
      source: 'process' as const,
      message: `line ${i}`,
    }));
    await insertLogs(t.api.db.owner, [
      ...lines,
      {
        instanceId,
        timestamp: new Date(now - (EXPORT_LIMITS.logDays + 1) * 86_400_000),
        level: 'info',
        source: 'process',
        message: 'too old to export',
      },
    ]);

    const response = await t.api.request('GET', '/v1/me/export', { token: user.token });

    const body = response.json<{ logs: { message: string }[]; truncated: { logs: boolean } }>();
    expect(body.logs).toHaveLength(EXPORT_LIMITS.logs);
    expect(body.logs[0]!.message).toBe('line 0');
    expect(body.truncated.logs).toBe(true);
    expect(response.text).not.toContain('too old to export');
  });

  it('is the caller’s own data only', async () => {
    const other = await busyUser();
    const me = await t.api.createUserWithToken();
    const response = await t.api.request('GET', '/v1/me/export', { token: me.token });
    expect(response.text).not.toContain(other.id);
    expect(response.json<{ instances: unknown[] }>().instances).toEqual([]);
  });
});

describe('DELETE /v1/me', () => {
  it('refuses without the caller’s email as confirmation, and erases nothing', async () => {
    const user = await busyUser();
    expectProblem(
      await t.api.request('DELETE', '/v1/me', {
        token: user.token,
        json: { confirm: 'someone@else.test' },
      }),
      400,
      'validation-failed',
    );
    expectProblem(
      await t.api.request('DELETE', '/v1/me', { token: user.token, json: {} }),
      400,
      'validation-failed',
    );
    expect((await t.api.request('GET', '/v1/me', { token: user.token })).status).toBe(200);
  });

  it('stops instances, deletes keys, tokens and logs, and clears the personal fields', async () => {
    const user = await busyUser();
    await t.api.db.owner.query(sql.unsafe`
      UPDATE mcp_instances SET config = '{"note": "personal"}' WHERE user_id = ${user.id}
    `);
    await logLine(user.instances[0]!.id, 'personal line');

    const response = await t.api.request('DELETE', '/v1/me', {
      token: user.token,
      json: { confirm: user.email.toUpperCase() },
    });

    expect(response.status).toBe(200);
    expect(response.json()).toEqual({
      erased: true,
      instances_stopped: 2,
      keys_deleted: 1,
      tokens_deleted: 1,
      logs_deleted: 1,
    });
    const row = await t.api.db.owner.one(
      sql.type(
        z.object({
          email: z.string(),
          name: z.string(),
          deleted_at: z.date().nullable(),
          is_active: z.boolean(),
        }),
      )`SELECT email, name, deleted_at, is_active FROM users WHERE id = ${user.id}`,
    );
    expect(row).toMatchObject({
      email: `erased-${user.id}@erased.invalid`,
      name: '',
      is_active: false,
    });
    expect(row.deleted_at).not.toBeNull();
    const stopped = t.node.fake.calls.stopInstance.map((call) => call.instanceId);
    for (const instance of user.instances) {
      expect(stopped).toContain(instance.id);
      const stored = await instanceRow(t.api.db.owner, instance.id);
      expect(stored.deleted_at).not.toBeNull();
      expect(stored.config).toEqual({});
    }
    const ids = sql.join(
      user.instances.map((i) => sql.fragment`${i.id}::uuid`),
      sql.fragment`, `,
    );
    expect(
      await countOf(sql.unsafe`SELECT count(*)::int FROM api_keys WHERE user_id = ${user.id}`),
    ).toBe(0);
    expect(
      await countOf(
        sql.unsafe`SELECT count(*)::int FROM user_api_tokens WHERE user_id = ${user.id}`,
      ),
    ).toBe(0);
    expect(
      await countOf(
        sql.unsafe`SELECT count(*)::int FROM mcp_logs WHERE mcp_instance_id IN (${ids})`,
      ),
    ).toBe(0);
    expect(
      await countOf(
        sql.unsafe`SELECT count(*)::int FROM mcp_events WHERE mcp_instance_id IN (${ids}) AND (ip_address IS NOT NULL OR user_agent IS NOT NULL)`,
      ),
    ).toBe(0);
    expect((await accountEvents(t.api, user.id)).map((e) => [e.event_type, e.actor])).toEqual([
      ['erased', 'user'],
    ]);
    await expectLockedOut(t.api, user);
    // The address is free again: nothing of the person is left holding it.
    const again = await t.api.request('POST', '/v1/users', {
      token: t.api.adminToken,
      json: { email: user.email, password: 'a-new-long-password', name: 'New' },
    });
    expect(again.status).toBe(201);
  });
});
