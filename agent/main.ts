// `npm run agent`: the host agent as a long-running process. SIGTERM/SIGINT
// stop it cleanly and exit 0.
import '../core/polyfills.js';
import { AgentConfigSchema, loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { startAgent } from './agent.js';

const config = await loadConfig(AgentConfigSchema, process.env);
const logger = createLogger({ level: config.LOG_LEVEL, name: 'minimcp-agent' });
const starting = startAgent({ config, logger });

// Listening before the start completes: a SIGTERM during a long first pass must
// still stop the children (systemd leaves them alone: KillMode=process).
let exiting = false;
const shutdown = async (signal: string) => {
  if (exiting) return;
  exiting = true;
  logger.info({ signal }, 'shutting down');
  // A start that fails unwinds by itself; one that succeeds is closed.
  const agent = await starting.catch(() => undefined);
  await agent?.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
const agent = await starting;
void agent.lost.then(() => process.exit(1));
