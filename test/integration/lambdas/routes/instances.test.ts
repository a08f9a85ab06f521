// The instance routes over real HTTP, against the embedded PostgreSQL and real
// gRPC agents (test fakes implementing the proto over mutual TLS).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import {
  expectProblem,
  startTestApi,
  type TestApi,
  type TestUserWithToken,
} from '../../../support/api.js';
import { agentLikeStart, createHarness, type Harness } from '../../../support/instance-harness.js';

describe('instance routes', () => {
  let h: Harness;
  let api: TestApi;
  let alice: TestUserWithToken;
  let bob: TestUserWithToken;

  beforeAll(async () => {
    h = await createHarness({ poolSize: 20 });
    api = await startTestApi({ db: h.db, instances: h.service({ startWaitMs: 2_000 }) });
    alice = await api.createUserWithToken();
    bob = await api.createUserWithToken();
  });
  afterAll(async () => {
    await api?.close();
    await h?.close();
  });
  beforeEach(() => h.downAllNodes());

  const create = (token: string, body: unknown = { type: 'demo' }) =>
    api.request('POST', '/v1/instances', { token, json: body });

  it('answers 201 with the access token (once) when the agent reports the instance running', async () => {
    await h.node({ handlers: { startInstance: agentLikeStart(h.db.owner, 'run') } });
    const created = await create(alice.token, { type: 'demo', duration_minutes: 30 });
    expect(created.status).toBe(201);
    const body = created.json<{
      id: string;
      status: string;
      access_token: string;
      access_url: string;
    }>();
    expect(body).toMatchObject({
      status: 'running',
      access_url: expect.stringMatching(/^http:\/\/.+\/mcp$/),
    });
    expect(body.access_token).toMatch(/^mcp_/);
    expect(created.headers.get('location')).toBe(`/v1/instances/${body.id}`);

    const fetched = await api.request('GET', `/v1/instances/${body.id}`, { token: alice.token });
    expect(fetched.status).toBe(200);
    expect(fetched.text).not.toContain(body.access_token);
    expect(await h.eventTypes(body.id)).toEqual(['created', 'started']);
  });

  it('answers 202 pending when the agent is slower than the wait', async () => {
    await h.node({ startDelayMs: 60_000 });
    const api202 = await startTestApi({ db: h.db, instances: h.service({ startWaitMs: 200 }) });
    try {
      const created = await api202.request('POST', '/v1/instances', {
        token: alice.token,
        json: { type: 'demo' },
      });
      expect(created.status).toBe(202);
      expect(created.json()).toMatchObject({
        status: 'pending',
        access_token: expect.stringMatching(/^mcp_/),
      });
    } finally {
      await api202.close();
    }
  });

  it('answers 503 with Retry-After when no node is available, and when the only node has no free port', async () => {
    const none = await create(alice.token);
    expectProblem(none, 503, 'no-node-available');
    expect(none.headers.get('retry-after')).toMatch(/^\d+$/);

    await h.node({
      portRangeStart: 3990,
      portRangeEnd: 3990,
      handlers: { startInstance: agentLikeStart(h.db.owner, 'run') },
    });
    expect((await create(bob.token)).status).toBe(201);
    const full = await create(bob.token);
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('enforces the per-user instance limit with 429', async () => {
    await h.node({ handlers: { startInstance: agentLikeStart(h.db.owner, 'run') } });
    const limited = await api.createUserWithToken();
    await h.db.owner.query(
      sql.unsafe`UPDATE system_settings SET value = '1' WHERE key = 'mcp.max_instances_per_user'`,
    );
    try {
      expect((await create(limited.token)).status).toBe(201);
      expectProblem(await create(limited.token), 429, 'instance-limit-reached');
    } finally {
      await h.db.owner.query(
        sql.unsafe`UPDATE system_settings SET value = '10' WHERE key = 'mcp.max_instances_per_user'`,
      );
    }
  });

  it('refuses bad input with 400 and clear details', async () => {
    expectProblem(
      await create(alice.token, { type: 'demo', colour: 'blue' }),
      400,
      'validation-failed',
    );
    expectProblem(
      await create(alice.token, { type: 'demo', duration_minutes: 0 }),
      400,
      'validation-failed',
    );
    expectProblem(await create(alice.token, { type: 'nope' }), 400, 'validation-failed');
    expectProblem(
      await api.request('GET', '/v1/instances/not-a-uuid', { token: alice.token }),
      400,
      'validation-failed',
    );
    expectProblem(await create(alice.token, { type: 'github' }), 409, 'key-missing');
  });

  it('lists, extends, rotates, reads logs and events, and deletes — writing an event for each change', async () => {
    await h.node({ handlers: { startInstance: agentLikeStart(h.db.owner, 'run') } });
    const created = (await create(alice.token, { type: 'demo', duration_minutes: 10 })).json<{
      id: string;
      expires_at: string;
      access_token: string;
    }>();
    const id = created.id;

    const list = await api.request('GET', '/v1/instances?status=running&limit=1', {
      token: alice.token,
    });
    expect(list.status).toBe(200);
    expect(list.json<{ instances: unknown[] }>().instances).toHaveLength(1);

    const extended = await api.request('POST', `/v1/instances/${id}/extend`, {
      token: alice.token,
      json: { minutes: 5 },
    });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.json<{ expires_at: string }>().expires_at)).toBeGreaterThan(
      Date.parse(created.expires_at),
    );

    const rotated = await api.request('POST', `/v1/instances/${id}/token`, { token: alice.token });
    expect(rotated.status).toBe(200);
    expect(rotated.json<{ access_token: string }>().access_token).not.toBe(created.access_token);

    expect(
      (await api.request('GET', `/v1/instances/${id}/logs?level=error&q=x`, { token: alice.token }))
        .status,
    ).toBe(200);
    const events = await api.request('GET', `/v1/instances/${id}/events`, { token: alice.token });
    expect(events.json<{ events: Array<{ type: string }> }>().events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['created', 'started', 'extended', 'token_rotated']),
    );

    for (const path of [
      `/v1/instances/${id}`,
      `/v1/instances/${id}/logs`,
      `/v1/instances/${id}/events`,
    ]) {
      expectProblem(await api.request('GET', path, { token: bob.token }), 404, 'not-found');
    }
    expectProblem(
      await api.request('DELETE', `/v1/instances/${id}`, { token: bob.token }),
      404,
      'not-found',
    );

    expect(
      (await api.request('DELETE', `/v1/instances/${id}`, { token: alice.token })).status,
    ).toBe(204);
    expectProblem(
      await api.request('GET', `/v1/instances/${id}`, { token: alice.token }),
      404,
      'not-found',
    );
    expect(await h.eventTypes(id)).toEqual(expect.arrayContaining(['deleted']));
    const held = await h.db.owner.oneFirst(
      sql.unsafe`SELECT count(*)::int FROM port_allocations WHERE mcp_instance_id = ${id}`,
    );
    expect(held).toBe(0);
  });

  it('restores an expired instance with 201 and refuses to restore a running one with 409', async () => {
    const { node } = await h.node({
      handlers: { startInstance: agentLikeStart(h.db.owner, 'run') },
    });
    const running = await h.seedInstance({ userId: alice.id, node, status: 'running' });
    expectProblem(
      await api.request('POST', `/v1/instances/${running.id}/restore`, { token: alice.token }),
      409,
      'conflict',
    );
    const expired = await h.seedInstance({
      userId: alice.id,
      node,
      status: 'expired',
      expiresAt: new Date(Date.now() - 1000),
    });
    const restored = await api.request('POST', `/v1/instances/${expired.id}/restore`, {
      token: alice.token,
    });
    expect(restored.status).toBe(201);
    expect(restored.json()).toMatchObject({ status: 'running' });
    expect(await h.eventTypes(expired.id)).toEqual(expect.arrayContaining(['restored']));
  });
});
