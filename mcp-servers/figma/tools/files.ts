// Figma tools on file content: get_file (trimmed document tree), get_file_nodes
// and render_images.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { fileKeyInput, fileKeyOf, nodeIdsInput } from '../client.js';
import { TrimmedNodeSchema, omittedNote, trimTree } from '../document-tree.js';
import { FgFile, FgFileNodes, FgImages } from '../upstream.js';

/** Components and styles listed inline by get_file; the list tools page through all of them. */
const MAX_INLINE_ENTRIES = 100;

const treeInput = {
  depth: z.number().int().min(1).max(8),
  max_nodes: z.number().int().min(1).max(2_000).default(300).describe('Node budget of the result'),
};

export function registerFileTools(server: McpServer, figma: HttpClient): void {
  server.registerTool(
    'get_file',
    {
      title: 'Get a file',
      description:
        'Reads a Figma file: name, version, last change, and its document tree trimmed to `depth` (1 = pages, 2 = pages and their top-level frames, ...) and max_nodes, each node with id, name, type, size and text. Also lists its components and styles. Use get_file_nodes to go deeper into one frame.',
      inputSchema: {
        file_key: fileKeyInput,
        depth: treeInput.depth.default(2),
        max_nodes: treeInput.max_nodes,
        version: z
          .string()
          .max(64)
          .optional()
          .describe('A version id; default the current version'),
      },
      outputSchema: {
        name: z.string(),
        file_key: z.string(),
        last_modified: z.string(),
        version: z.string(),
        editor_type: z.string().nullable(),
        role: z.string().nullable(),
        thumbnail_url: z.string().nullable(),
        document: TrimmedNodeSchema,
        node_count: z.number().int(),
        omitted_nodes: z.number().int(),
        components: z.array(z.object({ node_id: z.string(), key: z.string(), name: z.string() })),
        styles: z.array(
          z.object({
            node_id: z.string(),
            key: z.string(),
            name: z.string(),
            style_type: z.string(),
          }),
        ),
        note: z.string().optional(),
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const fileKey = fileKeyOf(args.file_key);
      const { data } = await figma.request(FgFile, {
        method: 'GET',
        path: path`/v1/files/${fileKey}`,
        query: { depth: args.depth, version: args.version },
        signal,
      });
      const tree = trimTree(data.document, args.depth, args.max_nodes);
      const components = Object.entries(data.components ?? {}).map(([nodeId, c]) => ({
        node_id: nodeId,
        key: c.key,
        name: c.name,
      }));
      const styles = Object.entries(data.styles ?? {}).map(([nodeId, s]) => ({
        node_id: nodeId,
        key: s.key,
        name: s.name,
        style_type: s.styleType,
      }));
      const notes = [
        omittedNote(tree.omitted_nodes),
        components.length > MAX_INLINE_ENTRIES || styles.length > MAX_INLINE_ENTRIES
          ? `Only the first ${MAX_INLINE_ENTRIES} components and styles are listed; use list_file_components and list_file_styles for all.`
          : undefined,
      ].filter((n): n is string => n !== undefined);
      return toolResult({
        name: data.name,
        file_key: fileKey,
        last_modified: data.lastModified,
        version: data.version,
        editor_type: data.editorType ?? null,
        role: data.role ?? null,
        thumbnail_url: data.thumbnailUrl ?? null,
        document: tree.root,
        node_count: tree.node_count,
        omitted_nodes: tree.omitted_nodes,
        components: components.slice(0, MAX_INLINE_ENTRIES),
        styles: styles.slice(0, MAX_INLINE_ENTRIES),
        ...(notes.length > 0 && { note: notes.join(' ') }),
      });
    },
  );

  server.registerTool(
    'get_file_nodes',
    {
      title: 'Get nodes of a file',
      description:
        'Reads specific nodes (frames, components, layers) of a Figma file by id, each with its subtree trimmed to `depth` and max_nodes. Node ids look like "1:2" (in URLs "node-id=1-2"; both forms work).',
      inputSchema: {
        file_key: fileKeyInput,
        node_ids: nodeIdsInput,
        depth: treeInput.depth.default(3),
        max_nodes: treeInput.max_nodes,
      },
      outputSchema: {
        name: z.string(),
        last_modified: z.string(),
        version: z.string(),
        nodes: z.array(
          z.object({
            node_id: z.string(),
            found: z.boolean(),
            document: TrimmedNodeSchema.nullable(),
            omitted_nodes: z.number().int(),
          }),
        ),
        note: z.string().optional(),
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const fileKey = fileKeyOf(args.file_key);
      const { data } = await figma.request(FgFileNodes, {
        method: 'GET',
        path: path`/v1/files/${fileKey}/nodes`,
        query: { ids: args.node_ids.join(','), depth: args.depth },
        signal,
      });
      // The budget is shared, so many requested nodes cannot multiply the result size.
      const perNode = Math.max(1, Math.floor(args.max_nodes / args.node_ids.length));
      let omitted = 0;
      const nodes = args.node_ids.map((id) => {
        const entry = data.nodes[id];
        if (!entry) return { node_id: id, found: false, document: null, omitted_nodes: 0 };
        const tree = trimTree(entry.document, args.depth, perNode);
        omitted += tree.omitted_nodes;
        return { node_id: id, found: true, document: tree.root, omitted_nodes: tree.omitted_nodes };
      });
      const note = omittedNote(omitted);
      return toolResult({
        name: data.name,
        last_modified: data.lastModified,
        version: data.version,
        nodes,
        ...(note && { note }),
      });
    },
  );

  server.registerTool(
    'render_images',
    {
      title: 'Render nodes to images',
      description:
        'Renders nodes of a Figma file to images and returns a download URL per node (PNG, JPG, SVG or PDF, scale 0.01-4). URLs expire after 30 days; a null URL means the node could not be rendered (missing, invisible or empty).',
      inputSchema: {
        file_key: fileKeyInput,
        node_ids: nodeIdsInput,
        format: z.enum(['png', 'jpg', 'svg', 'pdf']).default('png'),
        scale: z.number().min(0.01).max(4).default(1),
      },
      outputSchema: {
        format: z.string(),
        scale: z.number(),
        images: z.array(z.object({ node_id: z.string(), url: z.string().nullable() })),
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const fileKey = fileKeyOf(args.file_key);
      const { data } = await figma.request(FgImages, {
        method: 'GET',
        path: path`/v1/images/${fileKey}`,
        query: { ids: args.node_ids.join(','), format: args.format, scale: args.scale },
        signal,
      });
      if (data.err) throw new Error(`Figma could not render the nodes: ${data.err}.`);
      return toolResult({
        format: args.format,
        scale: args.scale,
        images: args.node_ids.map((id) => ({ node_id: id, url: data.images[id] ?? null })),
      });
    },
  );
}
