// GET /v1/nodes (admin): compute nodes with heartbeat age, port usage and the
// agent's health checks of the ports in use.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { NodeStatus } from '../../core/domain.js';
import { listNodes, type NodeRow } from '../../core/db/nodes.js';
import { activateNode, drainNode } from '../control/node-drain.js';
import { countPorts, type PortUsageRow } from '../../core/db/ports.js';
import { authenticate, requireAdmin } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
import { BEARER, IdParam, iso, isoOrNull, jsonResponse, problems, Timestamp } from '../schemas.js';

const NodeSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    status: NodeStatus,
    grpc_address: z.string(),
    public_host: z.string(),
    capacity: z.number().int(),
    agent_version: z.string().nullable(),
    last_heartbeat: Timestamp.nullable(),
    heartbeat_age_seconds: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Seconds since the last heartbeat; null if never.' }),
    ports: z.object({
      range_start: z.number().int(),
      range_end: z.number().int(),
      free: z.number().int(),
      used: z.number().int(),
      oldest_health_check: Timestamp.nullable().openapi({
        description:
          'Of the ports held by instances: the stalest time the agent found its child alive and its port answering (port_allocations.last_health_check); null if none checked.',
      }),
      newest_health_check: Timestamp.nullable().openapi({
        description: 'The freshest such check.',
      }),
      never_checked: z
        .number()
        .int()
        .openapi({ description: 'Held ports the agent never found healthy.' }),
    }),
    stats: z.record(z.string(), z.unknown()),
    created_at: Timestamp,
  })
  .openapi('Node');

function toNodeView(row: NodeRow, ports: PortUsageRow) {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    grpc_address: row.grpc_address,
    public_host: row.public_host,
    capacity: row.capacity,
    agent_version: row.agent_version,
    last_heartbeat: isoOrNull(row.last_heartbeat),
    heartbeat_age_seconds: row.last_heartbeat
      ? Math.max(0, Math.floor((Date.now() - row.last_heartbeat.getTime()) / 1000))
      : null,
    ports: {
      range_start: row.port_range_start,
      range_end: row.port_range_end,
      free: ports.free,
      used: ports.used,
      oldest_health_check: isoOrNull(ports.oldest_health_check),
      newest_health_check: isoOrNull(ports.newest_health_check),
      never_checked: ports.never_checked,
    },
    stats: row.stats,
    created_at: iso(row.created_at),
  };
}

const DrainSchema = z
  .strictObject({
    move: z.boolean().default(false).openapi({
      description:
        'Also move its running instances to other nodes now (same id and token, new node and port).',
    }),
  })
  .openapi('DrainNode');

const DrainResultSchema = z
  .object({
    node: NodeSchema,
    moved: z.array(
      z.object({ instance_id: z.uuid(), to_node: z.string(), port: z.number().int() }),
    ),
    not_moved: z.array(z.object({ instance_id: z.uuid(), reason: z.string() })),
  })
  .openapi('DrainResult');

const NodeListSchema = z.object({ nodes: z.array(NodeSchema) }).openapi('NodeList');

export function registerNodeRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const admin: MiddlewareHandler<AppEnv>[] = [authenticate(deps), requireAdmin];

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/nodes',
      tags: ['nodes'],
      summary: 'Compute nodes with heartbeat age, port usage and health checks (admin)',
      security: BEARER,
      middleware: admin,
      responses: {
        200: jsonResponse(NodeListSchema, 'Nodes by name.'),
        ...problems(401, 403, 503),
      },
    }),
    async (c) => {
      const nodes = await deps.pool.connect(async (db) => {
        const rows = await listNodes(db);
        return Promise.all(rows.map(async (row) => ({ row, ports: await countPorts(db, row.id) })));
      });
      return c.json({ nodes: nodes.map(({ row, ports }) => toNodeView(row, ports)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/nodes/{id}/drain',
      tags: ['nodes'],
      summary: 'Drain a node: no new instances; optionally move its instances elsewhere (admin)',
      security: BEARER,
      middleware: admin,
      request: {
        params: IdParam,
        body: { required: false, content: { 'application/json': { schema: DrainSchema } } },
      },
      responses: {
        200: jsonResponse(DrainResultSchema, 'Draining.'),
        ...problems(400, 401, 403, 404, 415, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = (c.req.valid('json') as z.infer<typeof DrainSchema> | undefined) ?? {
        move: false,
      };
      const result = await drainNode({
        pool: deps.pool,
        agents: deps.agents,
        nodeId: id,
        move: body.move,
        heartbeatFreshSeconds: deps.config.MINIMCP_NODE_STALE_SECONDS,
        startWaitMs: deps.config.MINIMCP_START_WAIT_MS,
        logger: c.get('log'),
      });
      c.get('log').info(
        { nodeId: id, moved: result.moved.length, notMoved: result.notMoved.length },
        'node draining',
      );
      const ports = await countPorts(deps.pool, id);
      return c.json(
        {
          node: toNodeView(result.node, ports),
          moved: result.moved.map((m) => ({
            instance_id: m.instanceId,
            to_node: m.toNode,
            port: m.port,
          })),
          not_moved: result.notMoved.map((m) => ({ instance_id: m.instanceId, reason: m.reason })),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/nodes/{id}/activate',
      tags: ['nodes'],
      summary: 'Let a drained node take new instances again (admin)',
      security: BEARER,
      middleware: admin,
      request: { params: IdParam },
      responses: { 200: jsonResponse(NodeSchema, 'Active.'), ...problems(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const node = await activateNode(deps.pool, id);
      return c.json(toNodeView(node, await countPorts(deps.pool, id)), 200);
    },
  );
}
