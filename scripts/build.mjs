// Transpile every TypeScript source to dist/ (one file in, one file out), then
// bundle each built-in MCP server entry (mcp-servers/*-mcp-server.ts) into one
// file over its transpiled copy. tsc does the type checking (`npm run typecheck`);
// esbuild only strips types and bundles, well under a second or two in all.
import { build } from 'esbuild';
import { readdir, cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { bundleServers } from './bundle-servers.mjs';

const roots = ['core', 'lambdas', 'agent', 'infra', 'mcp-servers', 'bench', 'test/support'];
const root = path.resolve(import.meta.dirname, '..');

async function listSources(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listSources(full)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const entryPoints = (await Promise.all(roots.map((r) => listSources(path.join(root, r))))).flat();
// dist/ is overwritten in place, not wiped: several processes (tests, a running
// local stack) may be executing files from it while another build runs.
await build({
  entryPoints,
  outdir: path.join(root, 'dist'),
  outbase: root,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
});
await bundleServers(path.join(root, 'dist', 'mcp-servers'));
// Assets that the compiled code reads beside itself, copied afresh: a renamed or
// removed migration must not linger in dist/ (the runner applies every file there).
for (const asset of ['proto', 'migrations']) {
  await rm(path.join(root, 'dist', asset), { recursive: true, force: true });
  await cp(path.join(root, asset), path.join(root, 'dist', asset), { recursive: true }).catch(
    (error) => {
      if (error.code !== 'ENOENT') throw error;
    },
  );
}
console.log(`built ${entryPoints.length} files into dist/`);
