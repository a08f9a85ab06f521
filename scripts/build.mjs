// Transpile every TypeScript source to dist/ (one file in, one file out; no
// bundling). tsc does the type checking (`npm run typecheck`); esbuild only
// strips types, which takes well under a second for the whole tree.
import { build } from 'esbuild';
import { readdir, cp } from 'node:fs/promises';
import path from 'node:path';

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
// Assets that the compiled code reads beside itself.
for (const asset of ['proto', 'migrations'])
  await cp(path.join(root, asset), path.join(root, 'dist', asset), { recursive: true }).catch(
    (error) => {
      if (error.code !== 'ENOENT') throw error;
    },
  );
console.log(`built ${entryPoints.length} files into dist/`);
