// The top of every ESM bundle we build (the Lambda handlers and the agent):
// CommonJS packages folded into an ES module still call require() and read
// __filename/__dirname, which an ES module does not have; this banner defines
// them from the bundle's own URL.
export const ESM_BANNER = [
  "import { createRequire as __minimcpCreateRequire } from 'node:module';",
  "import { fileURLToPath as __minimcpFileUrlToPath } from 'node:url';",
  'const require = __minimcpCreateRequire(import.meta.url);',
  'const __filename = __minimcpFileUrlToPath(import.meta.url);',
  "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
].join(' ');
