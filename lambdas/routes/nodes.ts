// GET /v1/nodes (admin): compute nodes with heartbeat age and port usage.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { NodeStatus } from '../../core/domain.js';
import { listNodes } from '../../core/db/nodes.js';
import { countPorts } from '../../core/db/ports.js';
import { authenticate, requireAdmin } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
import { BEARER, iso, isoOrNull, jsonResponse, problems, Timestamp } from '../schemas.js';

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
    }),
    stats: z.record(z.string(), z.unknown()),
    created_at: Timestamp,
  })
  .openapi('Node');

const NodeListSchema = z.object({ nodes: z.array(NodeSchema) }).openapi('NodeList');

export function registerNodeRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const admin: MiddlewareHandler<AppEnv>[] = [authenticate(deps), requireAdmin];

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/nodes',
      tags: ['nodes'],
      summary: 'Compute nodes with heartbeat age and port usage (admin)',
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
      const now = Date.now();
      return c.json(
        {
          nodes: nodes.map(({ row, ports }) => ({
            id: row.id,
            name: row.name,
            status: row.status,
            grpc_address: row.grpc_address,
            public_host: row.public_host,
            capacity: row.capacity,
            agent_version: row.agent_version,
            last_heartbeat: isoOrNull(row.last_heartbeat),
            heartbeat_age_seconds: row.last_heartbeat
              ? Math.max(0, Math.floor((now - row.last_heartbeat.getTime()) / 1000))
              : null,
            ports: {
              range_start: row.port_range_start,
              range_end: row.port_range_end,
              free: ports.free,
              used: ports.used,
            },
            stats: row.stats,
            created_at: iso(row.created_at),
          })),
        },
        200,
      );
    },
  );
}
