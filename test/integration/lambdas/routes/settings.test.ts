// GET /v1/settings and PATCH /v1/settings/{key} (admin): each key checked by
// its own schema, an admin_events row naming the admin per change, and the
// change applied by the next request without a restart.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { SETTING_SCHEMAS } from '../../../../core/db/settings.js';
import { expectProblem, startTestApi, type TestApi } from '../../../support/api.js';
import { getSetting, putSetting } from '../../../support/queries.js';

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});

type SettingView = {
  key: string;
  value: unknown;
  description: string | null;
  accepts: string;
  updated_at: string | null;
  last_change: {
    at: string;
    by: { kind: string; user_id: string | null };
    previous: unknown;
  } | null;
};

const AdminEvent = z.object({
  actor_user_id: z.string().nullable(),
  actor_kind: z.string(),
  event_type: z.string(),
  subject: z.string(),
  event_data: z.record(z.string(), z.unknown()),
  user_agent: z.string().nullable(),
});

async function adminEvents(subject: string) {
  return api.db.owner.any(sql.type(AdminEvent)`
    SELECT actor_user_id, actor_kind, event_type, subject, event_data, user_agent
    FROM admin_events WHERE subject = ${subject} ORDER BY created_at, id
  `);
}

describe('GET /v1/settings', () => {
  it('lists every known setting with its value, description and what it accepts', async () => {
    const response = await api.request('GET', '/v1/settings', { token: api.adminToken });
    expect(response.status).toBe(200);
    const { settings } = response.json<{ settings: SettingView[] }>();
    expect(settings.map((s) => s.key)).toEqual(Object.keys(SETTING_SCHEMAS));
    expect(settings.find((s) => s.key === 'port.range_start')).toMatchObject({
      value: 3001,
      description: 'Starting port for MCP instances',
      accepts: expect.stringContaining('3001 to 65535'),
      last_change: null,
    });
  });

  it('is for admins only', async () => {
    const user = await api.createUserWithToken();
    expectProblem(
      await api.request('GET', '/v1/settings', { token: user.token }),
      403,
      'forbidden',
    );
    expectProblem(await api.request('GET', '/v1/settings'), 401, 'unauthenticated');
    expectProblem(
      await api.request('PATCH', '/v1/settings/cleanup.retention_days', {
        token: user.token,
        json: { value: 1 },
      }),
      403,
      'forbidden',
    );
    expect(await getSetting(api.db.owner, 'cleanup.retention_days')).toBe(30);
  });
});

describe('PATCH /v1/settings/{key}', () => {
  it('changes a setting and records which admin changed it, from what to what', async () => {
    const admin = await api.createUserWithToken({ role: 'admin' });
    const response = await api.request('PATCH', '/v1/settings/cleanup.retention_days', {
      token: admin.token,
      json: { value: 14 },
      headers: { 'user-agent': 'settings-test' },
    });
    expect(response.status).toBe(200);
    expect(response.json<SettingView>()).toMatchObject({
      key: 'cleanup.retention_days',
      value: 14,
      last_change: { by: { kind: 'user', user_id: admin.id }, previous: 30 },
    });
    expect(await getSetting(api.db.owner, 'cleanup.retention_days')).toBe(14);
    expect(await adminEvents('setting:cleanup.retention_days')).toEqual([
      {
        actor_user_id: admin.id,
        actor_kind: 'user',
        event_type: 'setting_changed',
        subject: 'setting:cleanup.retention_days',
        event_data: { key: 'cleanup.retention_days', previous: 30, value: 14 },
        user_agent: 'settings-test',
      },
    ]);

    const listed = await api.request('GET', '/v1/settings', { token: api.adminToken });
    const view = listed
      .json<{ settings: SettingView[] }>()
      .settings.find((s) => s.key === 'cleanup.retention_days');
    expect(view).toMatchObject({ value: 14, last_change: { by: { user_id: admin.id } } });
  });

  it('records the bootstrap admin token as such (no user behind it)', async () => {
    const response = await api.request('PATCH', '/v1/settings/process.max_cpu_percent', {
      token: api.adminToken,
      json: { value: 150.5 },
    });
    expect(response.status).toBe(200);
    expect(await adminEvents('setting:process.max_cpu_percent')).toMatchObject([
      { actor_user_id: null, actor_kind: 'bootstrap-admin', event_data: { value: 150.5 } },
    ]);
  });

  it.each([
    [
      'cleanup.retention_days',
      0,
      /cleanup\.retention_days must be an integer from 1 to 3650, got 0/,
    ],
    ['cleanup.retention_days', '14', /got "14"/],
    ['mcp.max_instances_per_user', 2.5, /an integer from 0 to 10000, got 2.5/],
    ['port.range_end', 80, /from 3001 to 65535, .*got 80/],
    ['process.max_memory_mb', null, /process\.max_memory_mb must be .*got null/],
    ['encryption.algorithm', 'rot13', /"aes-256-gcm"/],
  ])('refuses %s = %j with a message that says what it accepts', async (key, value, detail) => {
    const before = await adminEvents(`setting:${key}`);
    const response = await api.request('PATCH', `/v1/settings/${key}`, {
      token: api.adminToken,
      json: { value },
    });
    expectProblem(response, 400, 'validation-failed');
    expect(response.json<{ detail: string }>().detail).toMatch(detail);
    expect(await adminEvents(`setting:${key}`)).toEqual(before);
  });

  it('keeps the port range a range', async () => {
    await putSetting(api.db.owner, 'port.range_start', 4000);
    await putSetting(api.db.owner, 'port.range_end', 4100);
    const response = await api.request('PATCH', '/v1/settings/port.range_start', {
      token: api.adminToken,
      json: { value: 4200 },
    });
    expectProblem(response, 400, 'validation-failed');
    expect(response.json<{ detail: string }>().detail).toContain('4200 > port.range_end 4100');
    const ok = await api.request('PATCH', '/v1/settings/port.range_end', {
      token: api.adminToken,
      json: { value: 4300 },
    });
    expect(ok.status).toBe(200);
    expect(await getSetting(api.db.owner, 'port.range_end')).toBe(4300);
  });

  it('answers 404 naming the known keys for an unknown key, and 400 without a value', async () => {
    const unknown = await api.request('PATCH', '/v1/settings/mcp.colour', {
      token: api.adminToken,
      json: { value: 'blue' },
    });
    expectProblem(unknown, 404, 'not-found');
    expect(unknown.json<{ detail: string }>().detail).toMatch(
      /no setting "mcp\.colour".*cleanup\.retention_days/,
    );
    expectProblem(
      await api.request('PATCH', '/v1/settings/cleanup.retention_days', {
        token: api.adminToken,
        json: {},
      }),
      400,
      'validation-failed',
    );
    expectProblem(
      await api.request('PATCH', '/v1/settings/cleanup.retention_days', {
        token: api.adminToken,
        json: { value: 3, extra: true },
      }),
      400,
      'validation-failed',
    );
  });

  it('recreates a row an operator removed', async () => {
    await api.db.owner.query(
      sql.unsafe`DELETE FROM system_settings WHERE key = 'mcp.default_duration_minutes'`,
    );
    const response = await api.request('PATCH', '/v1/settings/mcp.default_duration_minutes', {
      token: api.adminToken,
      json: { value: 90 },
    });
    expect(response.status).toBe(200);
    expect(response.json<SettingView>()).toMatchObject({
      value: 90,
      last_change: { previous: null },
    });
    expect(await getSetting(api.db.owner, 'mcp.default_duration_minutes')).toBe(90);
  });

  it('applies to the next request without a restart', async () => {
    const user = await api.createUserWithToken();
    const changed = await api.request('PATCH', '/v1/settings/mcp.max_instances_per_user', {
      token: api.adminToken,
      json: { value: 0 },
    });
    expect(changed.status).toBe(200);
    const create = await api.request('POST', '/v1/instances', {
      token: user.token,
      json: { type: 'demo' },
    });
    expectProblem(create, 429, 'instance-limit-reached');
    expect(create.json<{ detail: string }>().detail).toContain('the limit is 0');
  });
});
