// GET /v1/health: the API answers and its database does.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { sql } from 'slonik';
import type { AppDeps, AppEnv } from '../context.js';
import { jsonResponse, problems } from '../schemas.js';

const HealthSchema = z
  .object({ status: z.literal('ok'), database: z.literal('ok') })
  .openapi('Health');

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/health',
      tags: ['health'],
      summary: 'Liveness and database reachability',
      responses: {
        200: jsonResponse(HealthSchema, 'The API and its database answer.'),
        ...problems(503),
      },
    }),
    async (c) => {
      // A failure here is a connection error: mapped to 503 database-unavailable.
      await deps.pool.query(sql.unsafe`SELECT 1`);
      return c.json({ status: 'ok' as const, database: 'ok' as const }, 200);
    },
  );
}
