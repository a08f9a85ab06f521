// Builds the agent bundle the EC2 nodes install: esbuild bundles of the agent
// and each built-in MCP server laid out like dist/ (so paths the code resolves
// relative to its own module still hold), proto/, the boot-time env writer,
// and the host files (systemd unit, install script, log shipping config).
// The servers are bundled by scripts/bundle-servers.mjs, as for `npm run build`.
import { execFileSync } from 'node:child_process';
import { buildSync, type BuildOptions } from 'esbuild';
import { chmodSync, cpSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../constructs/paths.js';
import { ESM_BANNER } from '../constructs/esm-banner.js';

/** Files of this folder copied to the bundle root. */
export const HOST_FILES = [
  'install.sh',
  'minimcp-agent.service',
  'cloudwatch-agent.json',
  'prometheus.yaml',
  'logrotate.conf',
  'child-users.conf',
  'child-users.nft',
] as const;

/** The agent and the boot-time env writer (the servers: scripts/bundle-servers.mjs). */
export function agentEntryPoints(repoRoot = REPO_ROOT): Record<string, string> {
  return {
    'dist/agent/main': path.join(repoRoot, 'agent/main.ts'),
    'bootstrap/write-env': path.join(repoRoot, 'infra/agent-bundle/write-env.ts'),
  };
}

/** Writes the bundle into `outputDir` (the CDK asset staging folder). */
export function buildAgentBundle(outputDir: string, repoRoot = REPO_ROOT): void {
  const entryPoints = agentEntryPoints(repoRoot);
  const missing = Object.values(entryPoints).filter((file) => !existsSync(file));
  if (missing.length > 0)
    throw new Error(`agent bundle: missing entry points ${missing.join(', ')}`);
  const { 'dist/agent/main': agentMain, ...otherEntryPoints } = entryPoints;
  const common: BuildOptions = {
    outdir: outputDir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // AL2023's nodejs22 package.
    target: 'node22',
    mainFields: ['module', 'main'],
    sourcemap: 'linked',
    sourcesContent: false,
    banner: { js: ESM_BANNER },
    // An optional native binding pg loads only on request.
    external: ['pg-native'],
    // Whitespace, comments and syntax only: identifiers keep their names (error
    // names in logs and problem details come from class names, `new.target.name`
    // in core/errors.ts, and stack traces stay readable; keepNames would cost
    // more memory than minifying saves). The agent's resident
    // memory after loading: 68 MB, against 83 MB unminified (a comment with one
    // non-ASCII character makes V8 hold the whole 3.9 MB source as UTF-16) and
    // 77 MB for the unbundled dist/.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  };
  // The agent is split at its dynamic imports: what it loads only on request
  // (the AWS SDK's KMS and SSM clients, certificate generation) is a chunk of
  // its own that is never read, parsed or kept in memory where it is not used
  // (main.js 1.7 MB instead of 3.2 MB; 3.5 MB less live heap with the local key
  // provider, measured). The chunks sit beside main.js, so paths the code
  // resolves from its own module's URL hold in any of them.
  buildSync({
    ...common,
    entryPoints: { 'dist/agent/main': agentMain! },
    splitting: true,
    chunkNames: 'dist/agent/[name]-[hash]',
  });
  buildSync({ ...common, entryPoints: otherEntryPoints });
  // A child process: the server bundling is asynchronous (esbuild plugins), CDK's local bundling is not.
  execFileSync(
    process.execPath,
    [path.join(repoRoot, 'scripts/bundle-servers.mjs'), path.join(outputDir, 'dist/mcp-servers')],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const servers = readdirSync(path.join(outputDir, 'dist/mcp-servers')).filter((name) =>
    name.endsWith('-mcp-server.js'),
  );
  if (servers.length === 0)
    throw new Error('agent bundle: scripts/bundle-servers.mjs wrote no server');
  cpSync(path.join(repoRoot, 'proto'), path.join(outputDir, 'dist/proto'), { recursive: true });
  // The bundles are ES modules with a .js extension.
  writeFileSync(
    path.join(outputDir, 'package.json'),
    `${JSON.stringify({ name: 'minimcp-agent-bundle', private: true, type: 'module' }, null, 2)}\n`,
  );
  for (const file of HOST_FILES)
    cpSync(path.join(repoRoot, 'infra/agent-bundle', file), path.join(outputDir, file));
  chmodSync(path.join(outputDir, 'install.sh'), 0o755);
}
