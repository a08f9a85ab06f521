// Creating an instance: validation against its type and the settings, the
// per-user limit and placement under concurrency, one transaction for port,
// row and `created` event, then StartInstance over real gRPC (mutual TLS) with
// the running / pending / error outcomes the API answers 201 / 202 / 502 for.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { makeApiKey } from '../../../support/fixtures.js';
import { insertType, type McpTypeFields } from '../../../../core/db/mcp-types.js';
import { putSetting } from '../../../support/queries.js';
import {
  ConflictError,
  InstanceLimitError,
  KeyMissingError,
  NoNodeAvailableError,
  PortPoolExhaustedError,
  ValidationError,
} from '../../../../core/errors.js';
import { hashToken } from '../../../../core/tokens.js';
import {
  agentLikeStart,
  createHarness,
  instanceRow,
  portsHeldBy,
  type Harness,
} from '../../../support/instance-harness.js';

const META = { ip: '203.0.113.7', userAgent: 'jest/instances' };

const EventRow = z.object({
  event_type: z.string(),
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  event_data: z.record(z.string(), z.unknown()),
});

let h: Harness;

beforeAll(async () => {
  h = await createHarness({ poolSize: 20 });
});
afterAll(() => h.close());
beforeEach(async () => {
  await h.downAllNodes();
  await putSetting(h.db.owner, 'mcp.max_instances_per_user', 10);
});

async function storeKey(userId: string, type: string, expiresAt: Date | null = null) {
  return makeApiKey(h.db.owner, { userId, type, expiresAt });
}

function typeFields(overrides: Partial<McpTypeFields> = {}): McpTypeFields {
  return {
    displayName: 'Test type',
    description: null,
    iconUrl: null,
    command: 'node',
    args: ['server.js'],
    envMapping: {},
    requiresKey: false,
    keyPattern: null,
    configTemplate: {},
    configSchema: null,
    requiredScopes: [],
    resourceLimits: {},
    maxDurationMinutes: 60,
    isActive: true,
    ...overrides,
  };
}

describe('the start outcome', () => {
  it('is running, with the token shown once, when the agent reports the instance ready', async () => {
    const { fake, node } = await h.node({
      handlers: { startInstance: agentLikeStart(h.db.owner, 'run') },
    });
    const userId = await h.user();
    const outcome = await h.service({ startWaitMs: 3_000 }).create({
      userId,
      type: 'demo',
      ...META,
      requestId: 'req-1',
    });

    expect(outcome.status).toBe('running');
    expect(outcome.accessToken).toMatch(/^mcp_[A-Za-z0-9_-]{43}$/);
    const view = outcome.instance;
    expect(view.status).toBe('running');
    expect(view.type).toBe('demo');
    expect(view.nodeId).toBe(node.id);
    expect(view.port).toBeGreaterThanOrEqual(3001);
    expect(view.accessUrl).toBe(`http://127.0.0.1:${view.port}/mcp`);
    expect(view.tokenPrefix).toBe(outcome.accessToken.slice(0, 8));
    // The view never carries the token or its hash.
    const row = await instanceRow(h.db.owner, view.id);
    expect(JSON.stringify(view)).not.toContain(row.access_token_hash);
    expect(JSON.stringify(view)).not.toContain(outcome.accessToken);
    expect(row.access_token_hash).toBe(hashToken(outcome.accessToken));
    expect(await portsHeldBy(h.db.owner, view.id)).toEqual([{ node_id: node.id, port: view.port }]);

    expect(fake.calls.startInstance).toEqual([
      expect.objectContaining({
        instanceId: view.id,
        reason: 'START_REASON_CREATED',
        readyTimeoutMs: 3_000,
        requestId: 'req-1',
      }),
    ]);
    const events = await h.db.owner.any(sql.type(EventRow)`
      SELECT event_type, host(ip_address) AS ip_address, user_agent, event_data
      FROM mcp_events WHERE mcp_instance_id = ${view.id} ORDER BY created_at, id
    `);
    expect(events.map((e) => e.event_type)).toEqual(['created', 'started']);
    expect(events[0]).toMatchObject({
      ip_address: META.ip,
      user_agent: META.userAgent,
      event_data: { type: 'demo', duration_minutes: 60, node_id: node.id, port: view.port },
    });
    expect(JSON.stringify(events)).not.toContain(outcome.accessToken);
  });

  it('is pending when the agent is slower than the wait, and the row stays pending for it', async () => {
    const { fake } = await h.node({ startDelayMs: 120_000 });
    const outcome = await h.service({ startWaitMs: 200 }).create({
      userId: await h.user(),
      type: 'demo',
    });
    expect(outcome.status).toBe('pending');
    expect(outcome.instance.status).toBe('pending');
    expect(outcome.accessToken).toMatch(/^mcp_/);
    expect(fake.calls.startInstance).toHaveLength(1);
    expect(fake.instances.get(outcome.instance.id)?.status).toBe('starting');
    expect(await h.eventTypes(outcome.instance.id)).toEqual(['created']);
  });

  it('is pending when the agent is down: the row is committed for its reconcile loop', async () => {
    const { fake, node } = await h.node();
    await fake.stop();
    const outcome = await h.service({ startWaitMs: 300 }).create({
      userId: await h.user(),
      type: 'demo',
    });
    expect(outcome.status).toBe('pending');
    const row = await instanceRow(h.db.owner, outcome.instance.id);
    expect(row).toMatchObject({ status: 'pending', node_id: node.id });
    expect(await portsHeldBy(h.db.owner, row.id)).toHaveLength(1);
    expect(await h.eventTypes(row.id)).toEqual(['created']);
  });

  it('is error with the agent’s reason when the agent could not start it, and the instance stays in error', async () => {
    const { fake } = await h.node({
      handlers: { startInstance: agentLikeStart(h.db.owner, 'fail') },
    });
    const outcome = await h.service().create({ userId: await h.user(), type: 'demo' });
    expect(outcome.status).toBe('error');
    if (outcome.status !== 'error') throw new Error('unreachable');
    expect(outcome.error).toEqual({
      code: 'SPAWN_FAILED',
      message: 'could not spawn the server: no such command',
    });
    expect(outcome.instance.status).toBe('error');
    expect(outcome.instance.errorMessage).toBe('could not spawn the server: no such command');
    expect(fake.calls.startInstance).toHaveLength(1);
    expect(await h.eventTypes(outcome.instance.id)).toEqual(['created', 'error']);
  });
});

describe('validation against the type', () => {
  beforeEach(async () => {
    await h.node();
  });

  it('refuses a type that does not exist', async () => {
    await expect(h.service().create({ userId: await h.user(), type: 'nope' })).rejects.toThrow(
      new ValidationError('type "nope" does not exist: GET /v1/types lists the available ones'),
    );
  });

  it('refuses a disabled type with ConflictError', async () => {
    await insertType(h.db.owner, 'disabled-type', typeFields({ isActive: false }));
    const attempt = h.service().create({ userId: await h.user(), type: 'disabled-type' });
    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(attempt).rejects.toThrow('disabled');
  });

  it('keeps the duration within 1 and the type’s maximum, naming the offending value', async () => {
    const userId = await h.user();
    const service = h.service();
    for (const durationMinutes of [0, 61, 500, 1.5]) {
      const attempt = service.create({ userId, type: 'demo', durationMinutes });
      await expect(attempt).rejects.toBeInstanceOf(ValidationError);
      await expect(attempt).rejects.toThrow(
        `duration_minutes must be a whole number between 1 and 60 for type demo, got ${durationMinutes}`,
      );
    }
    expect(await countInstances(userId)).toBe(0);
  });

  it('defaults the duration to the setting, within the type’s maximum', async () => {
    const now = new Date('2031-05-01T12:00:00.000Z');
    await insertType(h.db.owner, 'short-type', typeFields({ maxDurationMinutes: 15 }));
    const service = h.service({}, () => now);
    const userId = await h.user();
    const demo = await service.create({ userId, type: 'demo' });
    expect(demo.instance.expiresAt).toEqual(new Date('2031-05-01T13:00:00.000Z'));
    const short = await service.create({ userId, type: 'short-type' });
    expect(short.instance.expiresAt).toEqual(new Date('2031-05-01T12:15:00.000Z'));
    const chosen = await service.create({ userId, type: 'demo', durationMinutes: 5 });
    expect(chosen.instance.expiresAt).toEqual(new Date('2031-05-01T12:05:00.000Z'));
  });

  it('refuses config keys the type’s template does not have, and stores template defaults', async () => {
    const userId = await h.user();
    await storeKey(userId, 'github');
    const service = h.service();
    await expect(
      service.create({ userId, type: 'demo', config: { colour: 'blue' } }),
    ).rejects.toThrow('config.colour: unknown key for type demo (known keys: none)');
    await expect(
      service.create({ userId, type: 'github', config: { api_version: 3 } }),
    ).rejects.toThrow("config.api_version: must be string like the type's default, got 3");

    const plain = await service.create({ userId, type: 'github' });
    expect(plain.instance.config).toEqual({ api_version: 'v3' });
    const chosen = await service.create({ userId, type: 'github', config: { api_version: 'v4' } });
    expect((await instanceRow(h.db.owner, chosen.instance.id)).config).toEqual({
      api_version: 'v4',
    });
  });

  it('checks config against the type’s config_schema when it has one', async () => {
    await insertType(
      h.db.owner,
      'schema-type',
      typeFields({
        configSchema: {
          type: 'object',
          properties: {
            retries: { type: 'integer', minimum: 0, maximum: 5, default: 2 },
            mode: { enum: ['fast', 'safe'] },
          },
          required: ['mode'],
          additionalProperties: false,
        },
      }),
    );
    await insertType(
      h.db.owner,
      'odd-schema-type',
      typeFields({ configSchema: { oneOf: [{ type: 'object' }] } }),
    );
    const userId = await h.user();
    const service = h.service();
    await expect(
      service.create({ userId, type: 'schema-type', config: { mode: 'fast', retries: 9 } }),
    ).rejects.toThrow('config.retries: must be ≤ 5, got 9');
    await expect(
      service.create({ userId, type: 'schema-type', config: { mode: 'fast', other: 1 } }),
    ).rejects.toThrow('config.other: unknown key (known keys: mode, retries)');
    await expect(service.create({ userId, type: 'schema-type', config: {} })).rejects.toThrow(
      'config.mode: is required',
    );
    await expect(service.create({ userId, type: 'odd-schema-type' })).rejects.toThrow(
      'uses "oneOf", which MiniMCP does not support',
    );

    const ok = await service.create({ userId, type: 'schema-type', config: { mode: 'safe' } });
    expect(ok.instance.config).toEqual({ mode: 'safe', retries: 2 });
  });
});

async function countInstances(userId: string): Promise<number> {
  return h.db.owner.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM mcp_instances WHERE user_id = ${userId}
  `);
}

describe('the API key', () => {
  beforeEach(async () => {
    await h.node();
  });

  it('is required for a type that needs one, and must be active and unexpired', async () => {
    const userId = await h.user();
    const service = h.service();
    await expect(service.create({ userId, type: 'github' })).rejects.toThrow(
      new KeyMissingError(
        'type github needs your API key and none is stored: store one with PUT /v1/keys/github',
      ),
    );

    const key = await storeKey(userId, 'github', new Date(Date.now() - 60_000));
    await expect(service.create({ userId, type: 'github' })).rejects.toBeInstanceOf(
      KeyMissingError,
    );
    await storeKey(userId, 'github', null);
    await h.db.owner.query(sql.unsafe`UPDATE api_keys SET is_active = false WHERE id = ${key.id}`);
    await expect(service.create({ userId, type: 'github' })).rejects.toBeInstanceOf(
      KeyMissingError,
    );
    expect(await countInstances(userId)).toBe(0);

    await h.db.owner.query(sql.unsafe`UPDATE api_keys SET is_active = true WHERE id = ${key.id}`);
    const created = await service.create({ userId, type: 'github' });
    expect((await instanceRow(h.db.owner, created.instance.id)).api_key_id).toBe(key.id);
  });

  it('is not needed by a keyless type like demo, even when another user has keys', async () => {
    const created = await h.service().create({ userId: await h.user(), type: 'demo' });
    expect((await instanceRow(h.db.owner, created.instance.id)).api_key_id).toBeNull();
  });
});

describe('the per-user limit', () => {
  beforeEach(async () => {
    await h.node();
  });

  it('counts pending and running instances, not deleted, expired or failed ones', async () => {
    await putSetting(h.db.owner, 'mcp.max_instances_per_user', 2);
    const userId = await h.user();
    const service = h.service();
    const first = await service.create({ userId, type: 'demo' });
    await service.create({ userId, type: 'demo' });
    const refused = service.create({ userId, type: 'demo' });
    await expect(refused).rejects.toBeInstanceOf(InstanceLimitError);
    await expect(refused).rejects.toThrow(
      'you have 2 pending or running instances and the limit is 2',
    );
    // Another user is not affected.
    await service.create({ userId: await h.user(), type: 'demo' });

    await service.delete(userId, first.instance.id);
    const third = await service.create({ userId, type: 'demo' });
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${third.instance.id}`,
    );
    await service.create({ userId, type: 'demo' });
    await expect(service.create({ userId, type: 'demo' })).rejects.toBeInstanceOf(
      InstanceLimitError,
    );
  });

  it('holds under 15 concurrent creates with a limit of 10: exactly 10 succeed', async () => {
    const userId = await h.user();
    const service = h.service();
    const results = await Promise.allSettled(
      Array.from({ length: 15 }, () => service.create({ userId, type: 'demo' })),
    );
    const created = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(created).toHaveLength(10);
    expect(refused).toHaveLength(5);
    for (const reason of refused) expect(reason).toBeInstanceOf(InstanceLimitError);
    expect(await countInstances(userId)).toBe(10);
  });
});

describe('placement', () => {
  it('refuses with NoNodeAvailableError when no node is up, leaving nothing behind', async () => {
    const userId = await h.user();
    await expect(h.service().create({ userId, type: 'demo' })).rejects.toBeInstanceOf(
      NoNodeAvailableError,
    );
    expect(await countInstances(userId)).toBe(0);
  });

  it('gives 120 concurrent creates on a 100-port node 100 distinct ports and 20 clean refusals', async () => {
    const { node } = await h.node({ portRangeStart: 4001, portRangeEnd: 4100 });
    const service = h.service();
    const users = await Promise.all(Array.from({ length: 12 }, () => h.user()));
    const results = await Promise.allSettled(
      users.flatMap((userId) =>
        Array.from({ length: 10 }, () => service.create({ userId, type: 'demo' })),
      ),
    );
    const created = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(created).toHaveLength(100);
    expect(refused).toHaveLength(20);
    for (const reason of refused)
      expect(
        reason instanceof PortPoolExhaustedError || reason instanceof NoNodeAvailableError,
      ).toBe(true);
    const ports = created.map((c) => c.instance.port);
    expect(new Set(ports).size).toBe(100);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(4001);
      expect(port).toBeLessThanOrEqual(4100);
    }
    const pool = await h.db.owner.one(sql.type(
      z.object({
        held: z.number(),
        holders: z.number(),
        instances: z.number(),
        events: z.number(),
      }),
    )`
      SELECT
        (SELECT count(*)::int FROM port_allocations WHERE node_id = ${node.id} AND NOT is_available) AS held,
        (SELECT count(DISTINCT mcp_instance_id)::int FROM port_allocations WHERE node_id = ${node.id}) AS holders,
        (SELECT count(*)::int FROM mcp_instances WHERE node_id = ${node.id}) AS instances,
        (SELECT count(*)::int FROM mcp_events e JOIN mcp_instances i ON i.id = e.mcp_instance_id
          WHERE i.node_id = ${node.id} AND e.event_type = 'created') AS events
    `);
    expect(pool).toEqual({ held: 100, holders: 100, instances: 100, events: 100 });
  });
});
