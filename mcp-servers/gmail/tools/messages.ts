// Gmail tools that read and trash messages: search_messages, get_message,
// get_thread and trash_message.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS, UPDATES } from '../../shared/annotations.js';
import { path } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import type { GmailApi } from '../client.js';
import {
  FullMessage,
  METADATA_HEADERS,
  MessageSummary,
  toFullMessage,
  toMessageSummary,
} from '../results.js';
import { GmMessage, GmMessageList, GmThread } from '../upstream.js';

/** Parallel metadata fetches of one search: fast, yet far below Gmail's per-user quota. */
const METADATA_CONCURRENCY = 5;

export const gmailId = (what: string) =>
  z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, `${what} is a Gmail id such as "18c2f0a1b2c3d4e5"`);

async function mapWithConcurrency<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function registerMessageTools(server: McpServer, gmail: GmailApi): void {
  const { http, basePath } = gmail;

  server.registerTool(
    'search_messages',
    {
      title: 'Search messages',
      description:
        'Searches the mailbox with Gmail query syntax, e.g. "from:alice@example.com is:unread newer_than:7d", "subject:invoice has:attachment", "label:work". Returns sender, subject, date and snippet per message, newest first. Pass next_page_token as page_token for more.',
      inputSchema: {
        query: z
          .string()
          .max(1000)
          .default('')
          .describe('Gmail search query; empty lists all mail'),
        label_ids: z
          .array(z.string())
          .optional()
          .describe('Only messages with all these label ids'),
        max_results: z.number().int().min(1).max(50).default(10),
        page_token: z.string().max(500).optional(),
        include_spam_trash: z.boolean().default(false),
      },
      outputSchema: {
        messages: z.array(MessageSummary),
        next_page_token: z.string().nullable(),
        result_size_estimate: z.number(),
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data } = await http.request(GmMessageList, {
        method: 'GET',
        path: `${basePath}/messages`,
        query: {
          q: args.query || undefined,
          labelIds: args.label_ids,
          maxResults: args.max_results,
          pageToken: args.page_token,
          includeSpamTrash: args.include_spam_trash || undefined,
        },
        signal,
      });
      const messages = await mapWithConcurrency(
        data.messages ?? [],
        METADATA_CONCURRENCY,
        async ({ id }) => {
          const { data: message } = await http.request(GmMessage, {
            method: 'GET',
            path: `${basePath}${path`/messages/${id}`}`,
            query: { format: 'metadata', metadataHeaders: METADATA_HEADERS },
            signal,
          });
          return toMessageSummary(message);
        },
      );
      return toolResult({
        messages,
        next_page_token: data.nextPageToken ?? null,
        result_size_estimate: data.resultSizeEstimate ?? messages.length,
      });
    },
  );

  server.registerTool(
    'get_message',
    {
      title: 'Read a message',
      description:
        'Reads one message: headers (from, to, cc, subject, date, Message-ID), the decoded text body (HTML converted to text when there is no plain part, trimmed to max_body_chars) and the list of attachments.',
      inputSchema: {
        message_id: gmailId('message_id'),
        max_body_chars: z.number().int().min(500).max(80_000).default(20_000),
      },
      outputSchema: FullMessage.shape,
      annotations: READS,
    },
    async ({ message_id, max_body_chars }, { signal }) => {
      const { data } = await http.request(GmMessage, {
        method: 'GET',
        path: `${basePath}${path`/messages/${message_id}`}`,
        query: { format: 'full' },
        signal,
      });
      return toolResult(toFullMessage(data, max_body_chars));
    },
  );

  server.registerTool(
    'get_thread',
    {
      title: 'Read a thread',
      description:
        'Reads a whole conversation, oldest message first, each with headers, decoded text body (trimmed to max_body_chars per message) and attachments.',
      inputSchema: {
        thread_id: gmailId('thread_id'),
        max_body_chars: z.number().int().min(500).max(40_000).default(5_000),
      },
      outputSchema: { id: z.string(), message_count: z.number(), messages: z.array(FullMessage) },
      annotations: READS,
    },
    async ({ thread_id, max_body_chars }, { signal }) => {
      const { data } = await http.request(GmThread, {
        method: 'GET',
        path: `${basePath}${path`/threads/${thread_id}`}`,
        query: { format: 'full' },
        signal,
      });
      const messages = (data.messages ?? []).map((m) => toFullMessage(m, max_body_chars));
      return toolResult({ id: data.id, message_count: messages.length, messages });
    },
  );

  server.registerTool(
    'trash_message',
    {
      title: 'Move a message to the trash',
      description:
        'Moves a message to the trash (Gmail deletes it for good after 30 days; until then it can be restored by removing the TRASH label).',
      inputSchema: { message_id: gmailId('message_id') },
      outputSchema: { id: z.string(), thread_id: z.string(), label_ids: z.array(z.string()) },
      annotations: UPDATES,
    },
    async ({ message_id }, { signal }) => {
      const { data } = await http.request(GmMessage, {
        method: 'POST',
        path: `${basePath}${path`/messages/${message_id}/trash`}`,
        idempotent: true,
        signal,
      });
      return toolResult({ id: data.id, thread_id: data.threadId, label_ids: data.labelIds ?? [] });
    },
  );
}
