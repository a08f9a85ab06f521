// The migrations in migrations/, by name, in the order they apply: what both the
// migration runner's test and the deploy-time step's test expect to see applied.
export const MIGRATION_NAMES = [
  '001_initial-schema',
  '002_indexes',
  '003_partition-maintenance',
  '004_row-level-security',
  '005_seed-data',
  '006_admin-events',
  '007_account-lifecycle',
  '008_api-key-events',
];
