// Bundles each built-in MCP server entry (mcp-servers/*-mcp-server.ts) into
// one minified file. Used by scripts/build.mjs (into dist/mcp-servers) and by the
// CDK's agent bundle (infra/agent-bundle/build.ts, which runs this file with the
// output folder as its argument), so that what the benchmarks measure is what
// the nodes run.
import { build } from 'esbuild';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');

/**
 * One file per built-in server, minified: a child then starts in about half the
 * CPU time of the transpiled tree (one read and one parse instead of ~300 module
 * resolutions of the MCP SDK, zod and ajv), which is most of create → ready.
 * The seeded `server_script` paths (./mcp-servers/<name>-mcp-server.js) stay.
 */
export async function bundleServers(outdir) {
  const dir = path.join(root, 'mcp-servers');
  const servers = (await readdir(dir)).filter((name) => name.endsWith('-mcp-server.ts'));
  await build({
    entryPoints: servers.map((name) => path.join(dir, name)),
    outdir,
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

if (
  process.argv[1] &&
  realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])
) {
  const outdir = process.argv[2];
  if (!outdir) {
    console.error('usage: node scripts/bundle-servers.mjs <output folder>');
    process.exit(2);
  }
  await bundleServers(path.resolve(outdir));
}
