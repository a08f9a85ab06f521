// Transpile every TypeScript source to dist/ (one file in, one file out), then
// bundle each built-in MCP server entry (mcp-servers/*-mcp-server.ts) into one
// file over its transpiled copy. tsc does the type checking (`npm run typecheck`);
// esbuild only strips types and bundles, well under a second or two in all.
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
await bundleServers();
// Assets that the compiled code reads beside itself.
for (const asset of ['proto', 'migrations'])
  await cp(path.join(root, asset), path.join(root, 'dist', asset), { recursive: true }).catch(
    (error) => {
      if (error.code !== 'ENOENT') throw error;
    },
  );
console.log(`built ${entryPoints.length} files into dist/`);

/**
 * One file per built-in server, minified: a child then starts in about half the
 * CPU time of the transpiled tree (one read and one parse instead of ~300 module
 * resolutions of the MCP SDK, zod and ajv), which is most of create → ready.
 * The seeded `server_script` paths (./mcp-servers/<name>-mcp-server.js) stay.
 */
async function bundleServers() {
  const dir = path.join(root, 'mcp-servers');
  const servers = (await readdir(dir)).filter((name) => name.endsWith('-mcp-server.ts'));
  await build({
    entryPoints: servers.map((name) => path.join(dir, name)),
    outdir: path.join(root, 'dist', 'mcp-servers'),
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    sourcesContent: false,
    plugins: [zodEnglishOnly()],
    logLevel: 'warning',
  });
}

/**
 * zod's `locales` namespace (40-odd translations of its error messages, a third
 * of zod's bundled size) is exported whole, so it cannot be tree-shaken; the
 * servers use the default English messages only (zod configures `en` itself).
 */
function zodEnglishOnly() {
  return {
    name: 'zod-english-only',
    setup(plugin) {
      plugin.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
        /[/\\]zod[/\\]/.test(args.importer)
          ? { path: path.join(path.dirname(args.importer), args.path), namespace: 'zod-locales' }
          : undefined,
      );
      plugin.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
        contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};`,
        resolveDir: path.dirname(args.path),
      }));
    },
  };
}
