// Gmail tools that write mail: create_draft and send_message, from fields the
// model fills in, built into an RFC 2822 message (base64url `raw`).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { ADDS } from '../../shared/annotations.js';
import { toolResult } from '../../shared/tool-result.js';
import type { GmailApi } from '../client.js';
import { buildRawMessage, toBase64Url } from '../mime.js';
import { GmDraft, GmMessage } from '../upstream.js';
import { gmailId } from './messages.js';

const singleLine = /^[^\r\n]*$/;
const EMAIL = /^[^@\s<>",;]+@[^@\s<>",;]+$/;
const address = z
  .string()
  .max(320)
  .regex(singleLine, 'an address must be a single line')
  .refine((a) => {
    const angle = /<([^<>]+)>\s*$/.exec(a);
    return EMAIL.test((angle?.[1] ?? a).trim());
  }, 'expected "name@example.com" or "Name <name@example.com>"');

const composeInput = {
  cc: z.array(address).max(100).optional(),
  bcc: z.array(address).max(100).optional(),
  subject: z.string().max(998).regex(singleLine, 'the subject must be a single line'),
  body: z.string().max(500_000).describe('Plain-text body'),
  html_body: z.string().max(1_000_000).optional().describe('Optional HTML alternative of the body'),
  thread_id: gmailId('thread_id').optional().describe('To reply inside an existing thread'),
  in_reply_to: z
    .string()
    .max(998)
    .regex(singleLine)
    .optional()
    .describe('Message-ID header of the message being answered (get_message headers.message_id)'),
};

type ComposeArgs = {
  to?: string[];
  cc?: string[];
  bcc?: string[];
  subject: string;
  body: string;
  html_body?: string;
  in_reply_to?: string;
};

const rawOf = (args: ComposeArgs): string =>
  toBase64Url(
    buildRawMessage({
      to: args.to ?? [],
      cc: args.cc,
      bcc: args.bcc,
      subject: args.subject,
      text: args.body,
      html: args.html_body,
      inReplyTo: args.in_reply_to,
    }),
  );

const replyNote =
  'To reply, pass thread_id and in_reply_to (from get_message) and keep the original subject ("Re: ...").';

export function registerComposeTools(server: McpServer, gmail: GmailApi): void {
  const { http, basePath } = gmail;

  server.registerTool(
    'create_draft',
    {
      title: 'Create a draft',
      description: `Saves a draft in the mailbox without sending it, for a person to review. ${replyNote}`,
      inputSchema: { to: z.array(address).max(100).default([]), ...composeInput },
      outputSchema: { draft_id: z.string(), message_id: z.string(), thread_id: z.string() },
      annotations: ADDS,
    },
    async (args, { signal }) => {
      const { data } = await http.request(GmDraft, {
        method: 'POST',
        path: `${basePath}/drafts`,
        json: { message: { raw: rawOf(args), threadId: args.thread_id } },
        signal,
      });
      return toolResult({
        draft_id: data.id,
        message_id: data.message.id,
        thread_id: data.message.threadId,
      });
    },
  );

  server.registerTool(
    'send_message',
    {
      title: 'Send a message',
      description: `Sends an email from the mailbox owner right away; it cannot be unsent. Prefer create_draft when a person should check it first. ${replyNote}`,
      inputSchema: { to: z.array(address).min(1).max(100), ...composeInput },
      outputSchema: { id: z.string(), thread_id: z.string(), label_ids: z.array(z.string()) },
      annotations: ADDS,
    },
    async (args, { signal }) => {
      const { data } = await http.request(GmMessage, {
        method: 'POST',
        path: `${basePath}/messages/send`,
        json: { raw: rawOf(args), threadId: args.thread_id },
        signal,
      });
      return toolResult({ id: data.id, thread_id: data.threadId, label_ids: data.labelIds ?? [] });
    },
  );
}
