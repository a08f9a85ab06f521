// `npm run db:start`: a real PostgreSQL with the whole MiniMCP schema, until Ctrl-C.
import path from 'node:path';
import { startLocalDatabase } from './local-database.js';

const dataDir = path.resolve(process.env.MINIMCP_DATA_DIR ?? '.minimcp');
const port = Number(process.env.MINIMCP_PG_PORT ?? 54329);

const database = await startLocalDatabase({ dataDir, port, log: (m) => console.log(`[db] ${m}`) });
console.log(`\nDATABASE_URL=${database.ownerUrl}`);
console.log(
  `# the API's role (row-level security applies):\nMINIMCP_APP_DATABASE_URL=${database.appUrl}`,
);
console.log(`# the host agent's role:\nMINIMCP_AGENT_DATABASE_URL=${database.agentUrl}`);
console.log('\nPostgreSQL is running; Ctrl-C stops it.');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await database.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
