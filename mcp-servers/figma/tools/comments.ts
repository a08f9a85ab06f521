// Figma tools on comments: list_comments and post_comment.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { ADDS, READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { fileKeyInput, fileKeyOf, listWindowInput, listWindowOutput, window } from '../client.js';
import { FgComment, FgComments } from '../upstream.js';

const Comment = z.object({
  id: z.string(),
  parent_id: z.string().nullable().describe('Set on replies: the comment answered'),
  author: z.string().nullable(),
  message: z.string(),
  created_at: z.string(),
  resolved_at: z.string().nullable(),
  node_id: z.string().nullable().describe('The node the comment is pinned to, if any'),
});

const toComment = (c: z.infer<typeof FgComment>): z.infer<typeof Comment> => ({
  id: c.id,
  parent_id: c.parent_id || null,
  author: c.user?.handle ?? null,
  message: c.message,
  created_at: c.created_at,
  resolved_at: c.resolved_at ?? null,
  node_id: c.client_meta?.node_id ?? null,
});

export function registerCommentTools(server: McpServer, figma: HttpClient): void {
  server.registerTool(
    'list_comments',
    {
      title: 'List comments',
      description:
        'Lists the comments of a Figma file (messages in Markdown) with author, time, resolution and the node each is pinned to; replies carry parent_id. Set include_resolved false to see only open threads.',
      inputSchema: {
        file_key: fileKeyInput,
        include_resolved: z.boolean().default(true),
        ...listWindowInput,
      },
      outputSchema: { comments: z.array(Comment), ...listWindowOutput },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data } = await figma.request(FgComments, {
        method: 'GET',
        path: path`/v1/files/${fileKeyOf(args.file_key)}/comments`,
        query: { as_md: true },
        signal,
      });
      const comments = data.comments
        .map(toComment)
        .filter((c) => args.include_resolved || c.resolved_at === null);
      const page = window(comments, args.offset, args.limit);
      return toolResult({ comments: page.items, total: page.total, next_offset: page.next_offset });
    },
  );

  server.registerTool(
    'post_comment',
    {
      title: 'Post a comment',
      description:
        'Posts a comment on a Figma file: a new thread (optionally pinned to a node, at x/y offset inside it) or a reply to an existing comment (reply_to_comment_id; replies cannot be pinned).',
      inputSchema: {
        file_key: fileKeyInput,
        message: z.string().min(1).max(10_000),
        reply_to_comment_id: z.string().regex(/^\d+$/).optional(),
        node_id: z
          .string()
          .regex(/^[A-Za-z0-9:;-]{1,200}$/)
          .transform((id) => id.replaceAll('-', ':'))
          .optional()
          .describe('Pin the comment to this node, e.g. "1:2"'),
        x: z.number().default(0).describe('Offset inside the node, in pixels'),
        y: z.number().default(0),
      },
      outputSchema: Comment.shape,
      annotations: ADDS,
    },
    async (args, { signal }) => {
      if (args.reply_to_comment_id && args.node_id)
        throw new Error(
          'A reply cannot be pinned to a node: pass reply_to_comment_id or node_id, not both.',
        );
      const { data } = await figma.request(FgComment, {
        method: 'POST',
        path: path`/v1/files/${fileKeyOf(args.file_key)}/comments`,
        json: {
          message: args.message,
          ...(args.reply_to_comment_id && { comment_id: args.reply_to_comment_id }),
          ...(args.node_id && {
            client_meta: { node_id: args.node_id, node_offset: { x: args.x, y: args.y } },
          }),
        },
        signal,
      });
      return toolResult(toComment(data));
    },
  );
}
