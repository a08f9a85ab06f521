// How test files find the one PostgreSQL server of the run (set by global-setup).
import { z } from 'zod';

export const TEST_PG_ENV = 'MINIMCP_TEST_PG';
export const TEMPLATE_DATABASE = 'minimcp_template';
/** Passwords of the application roles in the test cluster (not secrets: loopback, throwaway). */
export const APP_ROLE_PASSWORD = 'app-test-password';
export const AGENT_ROLE_PASSWORD = 'agent-test-password';

export const TestPostgres = z.object({ host: z.string(), port: z.number(), password: z.string() });
export type TestPostgres = z.infer<typeof TestPostgres>;

export function readTestPostgres(): TestPostgres {
  const raw = process.env[TEST_PG_ENV];
  if (!raw)
    throw new Error(
      `${TEST_PG_ENV} is not set: run the tests through jest (its global setup starts PostgreSQL)`,
    );
  return TestPostgres.parse(JSON.parse(raw));
}

export function urlFor(
  pg: TestPostgres,
  database: string,
  user = 'postgres',
  password = pg.password,
): string {
  return `postgres://${user}:${encodeURIComponent(password)}@${pg.host}:${pg.port}/${database}`;
}
