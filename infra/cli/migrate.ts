// `npm run migrate [up|down] [count]` against the PostgreSQL named by DATABASE_URL.
import { migrate, type MigrationDirection } from '../../lambdas/control/db/migrate.js';

const [directionArg = 'up', countArg] = process.argv.slice(2);
const databaseUrl = process.env.DATABASE_URL;

if (directionArg !== 'up' && directionArg !== 'down') {
  console.error(`usage: npm run migrate [up|down] [count] — got direction "${directionArg}"`);
  process.exit(2);
}
if (!databaseUrl) {
  console.error(
    'DATABASE_URL is not set: name the PostgreSQL to migrate (`npm run db:start` prints one)',
  );
  process.exit(2);
}
const count = countArg === undefined ? undefined : Number(countArg);
if (count !== undefined && (!Number.isInteger(count) || count < 1)) {
  console.error(`count must be a positive integer, got "${countArg}"`);
  process.exit(2);
}

const direction: MigrationDirection = directionArg;
try {
  const applied = await migrate({
    databaseUrl,
    direction,
    ...(count ? { count } : {}),
    log: (m) => console.log(m),
  });
  console.log(
    applied.length === 0
      ? 'nothing to migrate'
      : `${direction}: ${applied.map((m) => m.name).join(', ')}`,
  );
} catch (error) {
  console.error(`migration failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
