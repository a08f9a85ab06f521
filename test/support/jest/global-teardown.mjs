// jest global teardown: stops the run's PostgreSQL server, whatever the tests did.
export default async function globalTeardown() {
  const testPostgres = globalThis.__MINIMCP_TEST_PG__;
  globalThis.__MINIMCP_TEST_PG__ = undefined;
  if (testPostgres) await testPostgres.stop();
}
