// Figma tools on a file's published library: list_file_components and
// list_file_styles.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { fileKeyInput, fileKeyOf, listWindowInput, listWindowOutput, window } from '../client.js';
import { FgComponents, FgStyles } from '../upstream.js';

const published = {
  key: z.string().describe('Library key, used to import it in other files'),
  node_id: z.string(),
  name: z.string(),
  description: z.string(),
  thumbnail_url: z.string().nullable(),
  updated_at: z.string().nullable(),
};

export function registerLibraryTools(server: McpServer, figma: HttpClient): void {
  server.registerTool(
    'list_file_components',
    {
      title: "List a file's components",
      description:
        'Lists the published components of a Figma library file with their keys, node ids, descriptions and the page and frame holding them. Unpublished components are not included; get_file shows those.',
      inputSchema: { file_key: fileKeyInput, ...listWindowInput },
      outputSchema: {
        components: z.array(
          z.object({ ...published, page: z.string().nullable(), frame: z.string().nullable() }),
        ),
        ...listWindowOutput,
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data } = await figma.request(FgComponents, {
        method: 'GET',
        path: path`/v1/files/${fileKeyOf(args.file_key)}/components`,
        signal,
      });
      const components = data.meta.components.map((c) => ({
        key: c.key,
        node_id: c.node_id,
        name: c.name,
        description: c.description ?? '',
        thumbnail_url: c.thumbnail_url ?? null,
        updated_at: c.updated_at ?? null,
        page: c.containing_frame?.pageName ?? null,
        frame: c.containing_frame?.name ?? null,
      }));
      const page = window(components, args.offset, args.limit);
      return toolResult({
        components: page.items,
        total: page.total,
        next_offset: page.next_offset,
      });
    },
  );

  server.registerTool(
    'list_file_styles',
    {
      title: "List a file's styles",
      description:
        'Lists the published styles (FILL colors, TEXT styles, EFFECT and GRID styles) of a Figma library file with their keys, node ids and descriptions.',
      inputSchema: { file_key: fileKeyInput, ...listWindowInput },
      outputSchema: {
        styles: z.array(z.object({ ...published, style_type: z.string() })),
        ...listWindowOutput,
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data } = await figma.request(FgStyles, {
        method: 'GET',
        path: path`/v1/files/${fileKeyOf(args.file_key)}/styles`,
        signal,
      });
      const styles = data.meta.styles.map((s) => ({
        key: s.key,
        node_id: s.node_id,
        name: s.name,
        description: s.description ?? '',
        thumbnail_url: s.thumbnail_url ?? null,
        updated_at: s.updated_at ?? null,
        style_type: s.style_type,
      }));
      const page = window(styles, args.offset, args.limit);
      return toolResult({ styles: page.items, total: page.total, next_offset: page.next_offset });
    },
  );
}
