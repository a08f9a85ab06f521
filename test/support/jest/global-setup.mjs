// jest global setup: one PostgreSQL server per test run, migrated into a
// template database that each test file clones (test/support/database.ts).
// jest loads global setup outside its module system, so this imports the
// compiled code in dist/ (`npm test` builds first).
import { startTestPostgres } from '../../../dist/test/support/test-postgres.js';

export default async function globalSetup() {
  globalThis.__MINIMCP_TEST_PG__ = await startTestPostgres();
}
