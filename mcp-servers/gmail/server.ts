// The Gmail MCP server (Gmail API v1, OAuth 2.0): search and read mail, labels,
// drafts, sending and trash.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerDefinition } from '../shared/stdio-server.js';
import { GmailConfigSchema, createGmailApi, type GmailConfig } from './client.js';
import { registerComposeTools } from './tools/compose.js';
import { registerLabelTools } from './tools/labels.js';
import { registerMessageTools } from './tools/messages.js';

export const gmailServer: ServerDefinition<GmailConfig> = {
  name: 'gmail',
  requiresKey: true,
  configSchema: GmailConfigSchema,
  create({ env, log, redactor }) {
    const gmail = createGmailApi(env, log, redactor);
    const server = new McpServer(
      { name: 'minimcp-gmail', title: 'Gmail (MiniMCP)', version: '0.1.0' },
      {
        instructions:
          'The Gmail mailbox of the stored OAuth key. Find messages with search_messages (Gmail query syntax), then read them with get_message or get_thread by id. Labels can be given by id or name. send_message sends immediately; create_draft leaves a draft for a person to review.',
      },
    );
    registerMessageTools(server, gmail);
    registerLabelTools(server, gmail);
    registerComposeTools(server, gmail);
    return server;
  },
};
