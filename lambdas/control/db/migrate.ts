// Applies the SQL migrations in migrations/ with node-pg-migrate. Each file
// runs in its own transaction; the history lives in the pgmigrations table.
import { runner } from 'node-pg-migrate';

export type AppliedMigration = Awaited<ReturnType<typeof runner>>[number];
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** migrations/ beside the repo root; the build copies it to dist/migrations. */
export const MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../migrations',
);

export type MigrationDirection = 'up' | 'down';

export interface MigrateOptions {
  databaseUrl: string;
  direction: MigrationDirection;
  /** How many migrations; all of them by default (node-pg-migrate's down defaults to one). */
  count?: number;
  /** Folder of the SQL files; MIGRATIONS_DIR by default. A bundle (the deploy-time Lambda) ships them elsewhere. */
  dir?: string;
  log?: (message: string) => void;
}

export async function migrate(options: MigrateOptions): Promise<AppliedMigration[]> {
  const log = options.log ?? (() => undefined);
  return runner({
    databaseUrl: options.databaseUrl,
    dir: options.dir ?? MIGRATIONS_DIR,
    migrationsTable: 'pgmigrations',
    direction: options.direction,
    count: options.count ?? Infinity,
    checkOrder: true,
    createSchema: false,
    singleTransaction: false,
    logger: { debug: () => undefined, info: log, warn: log, error: log },
    verbose: false,
  });
}
