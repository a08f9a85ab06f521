// The Figma MCP server (REST v1, personal access token): files and nodes, image
// renders, comments, team projects and files, published components and styles.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerDefinition } from '../shared/stdio-server.js';
import { FigmaConfigSchema, createFigmaClient, type FigmaConfig } from './client.js';
import { registerCommentTools } from './tools/comments.js';
import { registerFileTools } from './tools/files.js';
import { registerLibraryTools } from './tools/library.js';
import { registerProjectTools } from './tools/projects.js';

export const figmaServer: ServerDefinition<FigmaConfig> = {
  name: 'figma',
  requiresKey: true,
  configSchema: FigmaConfigSchema,
  create({ env, log }) {
    const figma = createFigmaClient(env, log);
    const server = new McpServer(
      { name: 'minimcp-figma', title: 'Figma (MiniMCP)', version: '0.1.0' },
      {
        instructions:
          'Figma REST v1 as the owner of the stored token. Files are named by key or URL; start with get_file (a trimmed tree of pages and frames), then get_file_nodes for detail and render_images for pictures. Teams and projects are browsed by numeric id.',
      },
    );
    registerFileTools(server, figma);
    registerCommentTools(server, figma);
    registerProjectTools(server, figma);
    registerLibraryTools(server, figma);
    return server;
  },
};
