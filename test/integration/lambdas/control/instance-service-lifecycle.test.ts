// An instance after its creation: read and list it (filters, cursors), delete,
// extend, restore and rotate its token, read its logs and events. Every change
// writes its event; another user's instance is not found, whatever the call.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { insertEvent } from '../../../../core/db/events.js';
import { putSetting, insertLogs } from '../../../support/queries.js';
import {
  ConflictError,
  InstanceLimitError,
  NotFoundError,
  ValidationError,
} from '../../../../core/errors.js';
import type { InstanceService } from '../../../../lambdas/control/instance-service.js';
import { hashToken } from '../../../../core/tokens.js';
import {
  agentLikeStart,
  createHarness,
  instanceRow,
  portsHeldBy,
  type Harness,
  type TestNode,
} from '../../../support/instance-harness.js';

let h: Harness;
let node: TestNode;
let now: Date;
let service: InstanceService;
let alice: string;
let bob: string;

const MINUTE = 60_000;
const META = { ip: '2001:db8::5', userAgent: 'jest/lifecycle' };

beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());
beforeEach(async () => {
  await h.downAllNodes();
  await putSetting(h.db.owner, 'mcp.max_instances_per_user', 10);
  node = await h.node({ handlers: { startInstance: agentLikeStart(h.db.owner, 'run') } });
  now = new Date('2031-06-01T09:00:00.000Z');
  service = h.service({}, () => now);
  [alice, bob] = await Promise.all([h.user(), h.user()]);
});

async function createFor(userId: string, durationMinutes = 30) {
  return service.create({ userId, type: 'demo', durationMinutes });
}

const EventData = z.object({
  event_type: z.string(),
  event_data: z.record(z.string(), z.unknown()),
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
});

async function lastEvent(instanceId: string) {
  return h.db.owner.one(sql.type(EventData)`
    SELECT event_type, event_data, host(ip_address) AS ip_address, user_agent FROM mcp_events
    WHERE mcp_instance_id = ${instanceId} ORDER BY created_at DESC, id DESC LIMIT 1
  `);
}

describe("another user's instance", () => {
  it('is not found by any call, and is left untouched', async () => {
    const { instance } = await createFor(alice);
    const before = await instanceRow(h.db.owner, instance.id);
    const calls: Array<() => Promise<unknown>> = [
      () => service.get(bob, instance.id),
      () => service.delete(bob, instance.id),
      () => service.extend(bob, instance.id, { minutes: 1 }),
      () => service.restore(bob, instance.id),
      () => service.rotateToken(bob, instance.id),
      () => service.logs(bob, instance.id, { limit: 10 }),
      () => service.events(bob, instance.id, { limit: 10 }),
    ];
    for (const call of calls) {
      await expect(call()).rejects.toThrow(new NotFoundError(`instance ${instance.id} not found`));
    }
    expect(await instanceRow(h.db.owner, instance.id)).toEqual(before);
    expect(await h.eventTypes(instance.id)).toEqual(['created', 'started']);
    expect((await service.list(bob, { limit: 10 })).items).toEqual([]);
  });

  it('is the same answer as an id that does not exist, or is not an id at all', async () => {
    for (const id of [randomUUID(), 'not-an-id', "1' OR '1'='1"])
      await expect(service.get(alice, id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('get', () => {
  it('shows status, URL, expiry, usage and error, never the token', async () => {
    const created = await createFor(alice);
    await h.db.owner.query(sql.unsafe`
      UPDATE mcp_instances SET last_accessed = '2031-06-01T09:05:00Z', stats = '{"requests": 3}'
      WHERE id = ${created.instance.id}
    `);
    const view = await service.get(alice, created.instance.id);
    expect(view).toMatchObject({
      id: created.instance.id,
      type: 'demo',
      status: 'running',
      accessUrl: created.instance.accessUrl,
      nodeId: node.node.id,
      nodeName: node.node.name,
      expiresAt: new Date(now.getTime() + 30 * MINUTE),
      lastAccessed: new Date('2031-06-01T09:05:00Z'),
      stats: { requests: 3 },
      errorMessage: null,
    });
    expect(Object.keys(view)).not.toContain('accessTokenHash');
    expect(JSON.stringify(view)).not.toContain(created.accessToken);
  });
});

describe('list', () => {
  it('filters by status and type and pages newest first with an opaque cursor', async () => {
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_types SET requires_key = false WHERE name = 'github'`,
    );
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createFor(alice)).instance.id);
    const github = await service.create({ userId: alice, type: 'github' });
    ids.push(github.instance.id);
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${ids[1] ?? ''}`,
    );
    await createFor(bob);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await service.list(alice, { limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());

    const expired = await service.list(alice, { limit: 10, status: 'expired' });
    expect(expired.items.map((i) => i.id)).toEqual([ids[1]]);
    expect(expired.nextCursor).toBeNull();
    const githubOnly = await service.list(alice, { limit: 10, type: 'github' });
    expect(githubOnly.items.map((i) => i.id)).toEqual([github.instance.id]);
    const running = await service.list(alice, { limit: 10, status: 'running', type: 'demo' });
    expect(running.items).toHaveLength(4);
  });

  it('pages exactly through rows created in the same microsecond', async () => {
    const created = [];
    for (let i = 0; i < 4; i++) created.push((await createFor(alice)).instance.id);
    await h.db.owner.query(sql.unsafe`
      UPDATE mcp_instances SET created_at = '2031-06-01T09:00:00.123456Z' WHERE user_id = ${alice}
    `);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await service.list(alice, { limit: 1, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect([...seen].sort()).toEqual([...created].sort());
  });

  it('refuses a cursor it did not issue for this list, and a limit out of range', async () => {
    const { instance } = await createFor(alice);
    const eventsPage = await service.events(alice, instance.id, { limit: 1 });
    expect(eventsPage.nextCursor).not.toBeNull();
    for (const cursor of ['garbage', eventsPage.nextCursor ?? '', 'eyJrIjoiaW5zdGFuY2VzIn0'])
      await expect(service.list(alice, { limit: 10, cursor })).rejects.toThrow(
        new ValidationError(
          'cursor is not valid for this list: pass the next_cursor of a previous page unchanged',
        ),
      );
    for (const limit of [0, 101, 2.5])
      await expect(service.list(alice, { limit })).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('delete', () => {
  it('soft-deletes, releases the port, writes the event and asks the agent to stop it', async () => {
    const { instance } = await createFor(alice);
    await service.delete(alice, instance.id, { ...META, requestId: 'req-del' });

    const row = await instanceRow(h.db.owner, instance.id);
    expect(row.deleted_at).not.toBeNull();
    expect(await portsHeldBy(h.db.owner, instance.id)).toEqual([]);
    expect(await lastEvent(instance.id)).toEqual({
      event_type: 'deleted',
      event_data: {
        status: 'running',
        node_id: node.node.id,
        port: instance.port,
        ports_released: 1,
      },
      ip_address: META.ip,
      user_agent: META.userAgent,
    });
    expect(node.fake.calls.stopInstance).toEqual([
      expect.objectContaining({
        instanceId: instance.id,
        reason: 'STOP_REASON_DELETED',
        requestId: 'req-del',
      }),
    ]);
    await expect(service.get(alice, instance.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(service.delete(alice, instance.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await service.list(alice, { limit: 10 })).items).toEqual([]);
    expect(await h.eventTypes(instance.id)).toEqual(['created', 'started', 'deleted']);
  });

  it('still deletes when the agent is down', async () => {
    const { instance } = await createFor(alice);
    await node.fake.stop();
    await service.delete(alice, instance.id);
    expect((await instanceRow(h.db.owner, instance.id)).deleted_at).not.toBeNull();
  });
});

describe('extend', () => {
  it('moves the expiry from the later of now and expires_at, and tells the agent', async () => {
    const { instance } = await createFor(alice, 30);
    const extended = await service.extend(alice, instance.id, { minutes: 20 }, META);
    expect(extended.expiresAt).toEqual(new Date(now.getTime() + 50 * MINUTE));
    expect(await lastEvent(instance.id)).toEqual({
      event_type: 'extended',
      event_data: {
        minutes: 20,
        previous_expires_at: new Date(now.getTime() + 30 * MINUTE).toISOString(),
        expires_at: new Date(now.getTime() + 50 * MINUTE).toISOString(),
      },
      ip_address: META.ip,
      user_agent: META.userAgent,
    });
    expect(node.fake.calls.startInstance.map((c) => c.reason)).toEqual([
      'START_REASON_CREATED',
      'START_REASON_EXTENDED',
    ]);

    // Past its expiry (not yet expired by anyone), the extension counts from now.
    await h.db.owner.query(sql.unsafe`
      UPDATE mcp_instances SET expires_at = ${sql.timestamp(new Date(now.getTime() - 5 * MINUTE))}
      WHERE id = ${instance.id}
    `);
    const fromNow = await service.extend(alice, instance.id, { minutes: 10 });
    expect(fromNow.expiresAt).toEqual(new Date(now.getTime() + 10 * MINUTE));
  });

  it('keeps the lifetime from now within the type’s maximum, and says by how much it may extend', async () => {
    const { instance } = await createFor(alice, 30);
    await service.extend(alice, instance.id, { minutes: 20 });
    const refused = service.extend(alice, instance.id, { minutes: 20 });
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
    await expect(refused).rejects.toThrow(
      'extending by 20 minutes would leave 70 minutes to run, but type demo allows at most 60 minutes from now: extend by at most 10 minutes',
    );
    await expect(service.extend(alice, instance.id, { minutes: 0 })).rejects.toThrow(
      'minutes must be a whole number of at least 1, got 0',
    );
    expect((await service.get(alice, instance.id)).expiresAt).toEqual(
      new Date(now.getTime() + 50 * MINUTE),
    );
    await service.extend(alice, instance.id, { minutes: 10 });
    expect(await h.eventTypes(instance.id)).toEqual(['created', 'started', 'extended', 'extended']);
  });

  it('refuses an instance that is no longer pending or running', async () => {
    const { instance } = await createFor(alice);
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${instance.id}`,
    );
    await expect(service.extend(alice, instance.id, { minutes: 5 })).rejects.toThrow(
      new ConflictError(
        `instance ${instance.id} is expired: only a pending or running instance can be extended (restore it instead)`,
      ),
    );
  });
});

describe('restore', () => {
  it('gives an expired instance a new run: same id and token, new placement and expiry', async () => {
    const created = await createFor(alice, 30);
    const id = created.instance.id;
    // What an agent does at expiry: status, port back to the pool, event.
    await h.db.owner.transaction(async (tx) => {
      await tx.query(sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${id}`);
      await tx.query(
        sql.unsafe`UPDATE port_allocations SET is_available = true, mcp_instance_id = NULL WHERE mcp_instance_id = ${id}`,
      );
      await insertEvent(tx, { instanceId: id, userId: alice, type: 'expired' });
    });
    // The old node is gone; a new one takes it.
    await h.downAllNodes();
    const other = await h.node({
      portRangeStart: 5001,
      portRangeEnd: 5010,
      handlers: { startInstance: agentLikeStart(h.db.owner, 'run') },
    });
    now = new Date(now.getTime() + 120 * MINUTE);

    const outcome = await service.restore(alice, id, { ...META, requestId: 'req-restore' });
    expect(outcome.status).toBe('running');
    expect(outcome.instance).toMatchObject({
      id,
      status: 'running',
      nodeId: other.node.id,
      port: 5001,
      accessUrl: 'http://127.0.0.1:5001/mcp',
      expiresAt: new Date(now.getTime() + 30 * MINUTE),
    });
    const row = await instanceRow(h.db.owner, id);
    expect(row.access_token_hash).toBe(hashToken(created.accessToken));
    expect(await portsHeldBy(h.db.owner, id)).toEqual([{ node_id: other.node.id, port: 5001 }]);
    expect(other.fake.calls.startInstance).toEqual([
      expect.objectContaining({
        instanceId: id,
        reason: 'START_REASON_RESTORED',
        requestId: 'req-restore',
      }),
    ]);
    expect(await h.eventTypes(id)).toEqual([
      'created',
      'started',
      'expired',
      'restored',
      'started',
    ]);
    const restored = await h.db.owner.one(sql.type(EventData)`
      SELECT event_type, event_data, host(ip_address) AS ip_address, user_agent FROM mcp_events
      WHERE mcp_instance_id = ${id} AND event_type = 'restored'
    `);
    expect(restored).toEqual({
      event_type: 'restored',
      event_data: {
        previous_status: 'expired',
        duration_minutes: 30,
        expires_at: new Date(now.getTime() + 30 * MINUTE).toISOString(),
        node_id: other.node.id,
        node: other.node.name,
        port: 5001,
      },
      ip_address: META.ip,
      user_agent: META.userAgent,
    });
  });

  it('releases a port a disconnected or errored instance still holds before placing it again', async () => {
    const { instance } = await createFor(alice);
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'disconnected' WHERE id = ${instance.id}`,
    );
    expect(await portsHeldBy(h.db.owner, instance.id)).toHaveLength(1);
    const outcome = await service.restore(alice, instance.id);
    expect(outcome.instance.status).toBe('running');
    const held = await portsHeldBy(h.db.owner, instance.id);
    expect(held).toEqual([{ node_id: node.node.id, port: outcome.instance.port }]);

    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'error', error_message = 'crashed' WHERE id = ${instance.id}`,
    );
    const again = await service.restore(alice, instance.id);
    expect(again.instance).toMatchObject({ status: 'running', errorMessage: null });
    expect(await portsHeldBy(h.db.owner, instance.id)).toHaveLength(1);
  });

  it('refuses a live instance, and respects the per-user limit', async () => {
    const { instance } = await createFor(alice);
    await expect(service.restore(alice, instance.id)).rejects.toThrow(
      new ConflictError(
        `instance ${instance.id} is running: only an expired, disconnected or errored instance can be restored`,
      ),
    );
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${instance.id}`,
    );
    await putSetting(h.db.owner, 'mcp.max_instances_per_user', 1);
    await createFor(alice);
    await expect(service.restore(alice, instance.id)).rejects.toBeInstanceOf(InstanceLimitError);
    expect((await instanceRow(h.db.owner, instance.id)).status).toBe('expired');
  });

  it('answers pending when the agent does not confirm in time', async () => {
    const { instance } = await createFor(alice);
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${instance.id}`,
    );
    await node.fake.stop();
    const outcome = await h.service({ startWaitMs: 200 }).restore(alice, instance.id);
    expect(outcome.status).toBe('pending');
    expect((await instanceRow(h.db.owner, instance.id)).status).toBe('pending');
  });
});

describe('rotateToken', () => {
  it('stores the new hash, shows the new token once, writes the event and tells the agent', async () => {
    const created = await createFor(alice);
    const id = created.instance.id;
    const rotated = await service.rotateToken(alice, id, META);
    expect(rotated.accessToken).toMatch(/^mcp_/);
    expect(rotated.accessToken).not.toBe(created.accessToken);
    const row = await instanceRow(h.db.owner, id);
    expect(row.access_token_hash).toBe(hashToken(rotated.accessToken));
    expect(rotated.instance.tokenPrefix).toBe(rotated.accessToken.slice(0, 8));

    const event = await lastEvent(id);
    expect(event).toEqual({
      event_type: 'token_rotated',
      event_data: {
        previous_prefix: created.accessToken.slice(0, 8),
        prefix: rotated.accessToken.slice(0, 8),
      },
      ip_address: META.ip,
      user_agent: META.userAgent,
    });
    expect(JSON.stringify(event)).not.toContain(rotated.accessToken);
    expect(node.fake.calls.startInstance.at(-1)).toMatchObject({
      instanceId: id,
      reason: 'START_REASON_TOKEN_ROTATED',
    });
  });

  it('does not call the agent for an instance that is not running', async () => {
    const { instance } = await createFor(alice);
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${instance.id}`,
    );
    const calls = node.fake.calls.startInstance.length;
    await service.rotateToken(alice, instance.id);
    expect(node.fake.calls.startInstance).toHaveLength(calls);
    expect((await h.eventTypes(instance.id)).at(-1)).toBe('token_rotated');
  });
});

describe('logs', () => {
  it('filters by level, time and text, newest first, with cursor pagination', async () => {
    const { instance } = await createFor(alice);
    // Log partitions exist around the real date (the maintenance job keeps them).
    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    await insertLogs(
      h.db.owner,
      Array.from({ length: 7 }, (_, i) => ({
        instanceId: instance.id,
        timestamp: new Date(base + i * 1000),
        level: i % 2 === 0 ? ('info' as const) : ('error' as const),
        source: 'process' as const,
        message: i === 3 ? 'Upstream 50% FAILED' : `line ${i}`,
      })),
    );
    // Two lines in the same millisecond still page apart.
    await insertLogs(h.db.owner, [
      {
        instanceId: instance.id,
        timestamp: new Date(base + 10_000),
        level: 'warn',
        source: 'system',
        message: 'twin a',
      },
      {
        instanceId: instance.id,
        timestamp: new Date(base + 10_000),
        level: 'warn',
        source: 'system',
        message: 'twin b',
      },
    ]);

    const messages: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await service.logs(alice, instance.id, {
        limit: 3,
        ...(cursor ? { cursor } : {}),
      });
      messages.push(...page.items.map((l) => l.message));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(messages).toHaveLength(9);
    expect(new Set(messages).size).toBe(9);
    expect(messages.slice(2)).toEqual([
      'line 6',
      'line 5',
      'line 4',
      'Upstream 50% FAILED',
      'line 2',
      'line 1',
      'line 0',
    ]);

    const errors = await service.logs(alice, instance.id, { limit: 10, level: 'error' });
    expect(errors.items.map((l) => l.message)).toEqual(['line 5', 'Upstream 50% FAILED', 'line 1']);
    const found = await service.logs(alice, instance.id, { limit: 10, text: '50% fail' });
    expect(found.items.map((l) => l.message)).toEqual(['Upstream 50% FAILED']);
    const window = await service.logs(alice, instance.id, {
      limit: 10,
      since: new Date(base + 2000),
      until: new Date(base + 4000),
    });
    expect(window.items.map((l) => l.message)).toEqual(['Upstream 50% FAILED', 'line 2']);
  });
});

describe('events', () => {
  it('lists every change newest first, paging exactly through events of one transaction', async () => {
    const { instance } = await createFor(alice);
    await service.extend(alice, instance.id, { minutes: 5 });
    await service.rotateToken(alice, instance.id);
    // Events written in one transaction share created_at to the microsecond.
    await h.db.owner.transaction(async (tx) => {
      for (let i = 0; i < 3; i++)
        await insertEvent(tx, {
          instanceId: instance.id,
          userId: alice,
          type: 'restarted',
          data: { i },
        });
    });

    const types: string[] = [];
    const ids = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await service.events(alice, instance.id, {
        limit: 2,
        ...(cursor ? { cursor } : {}),
      });
      for (const event of page.items) {
        types.push(event.type);
        ids.add(event.id);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(ids.size).toBe(7);
    expect(types).toEqual([
      'restarted',
      'restarted',
      'restarted',
      'token_rotated',
      'extended',
      'started',
      'created',
    ]);
  });
});
