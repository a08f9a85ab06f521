// Gmail tools on labels: list_labels and modify_labels (by label id or name).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS, UPDATES } from '../../shared/annotations.js';
import { path } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import type { GmailApi } from '../client.js';
import { GmLabelList, GmMessage } from '../upstream.js';
import { gmailId } from './messages.js';

const Label = z.object({ id: z.string(), name: z.string(), type: z.string().nullable() });

export function registerLabelTools(server: McpServer, gmail: GmailApi): void {
  const { http, basePath } = gmail;
  const listLabels = async (signal: AbortSignal): Promise<z.infer<typeof Label>[]> => {
    const { data } = await http.request(GmLabelList, {
      method: 'GET',
      path: `${basePath}/labels`,
      signal,
    });
    return (data.labels ?? []).map((l) => ({ id: l.id, name: l.name, type: l.type ?? null }));
  };

  server.registerTool(
    'list_labels',
    {
      title: 'List labels',
      description:
        "Lists the mailbox labels with their ids: system labels (INBOX, UNREAD, STARRED, IMPORTANT, SPAM, TRASH, ...) and the user's own.",
      inputSchema: {},
      outputSchema: { labels: z.array(Label) },
      annotations: READS,
    },
    async (_args, { signal }) => toolResult({ labels: await listLabels(signal) }),
  );

  server.registerTool(
    'modify_labels',
    {
      title: 'Add or remove labels',
      description:
        'Adds and removes labels on a message, by label id or name (e.g. add ["Work"], remove ["UNREAD"] to mark as read, remove ["INBOX"] to archive). Unknown labels are refused; list_labels shows the available ones.',
      inputSchema: {
        message_id: gmailId('message_id'),
        add: z.array(z.string().min(1)).max(100).default([]),
        remove: z.array(z.string().min(1)).max(100).default([]),
      },
      outputSchema: {
        id: z.string(),
        thread_id: z.string(),
        labels: z.array(Label.pick({ id: true, name: true })),
      },
      annotations: UPDATES,
    },
    async ({ message_id, add, remove }, { signal }) => {
      if (add.length === 0 && remove.length === 0)
        throw new Error('Nothing to change: pass at least one label in add or remove.');
      const labels = await listLabels(signal);
      const resolve = (wanted: string): string => {
        const label =
          labels.find((l) => l.id === wanted) ??
          labels.find((l) => l.name.toLowerCase() === wanted.toLowerCase());
        if (!label)
          throw new Error(
            `Unknown label ${JSON.stringify(wanted)}; use list_labels to see the ids and names of the mailbox's labels.`,
          );
        return label.id;
      };
      const { data } = await http.request(GmMessage, {
        method: 'POST',
        path: `${basePath}${path`/messages/${message_id}/modify`}`,
        json: { addLabelIds: add.map(resolve), removeLabelIds: remove.map(resolve) },
        idempotent: true,
        signal,
      });
      const nameOf = new Map(labels.map((l) => [l.id, l.name]));
      return toolResult({
        id: data.id,
        thread_id: data.threadId,
        labels: (data.labelIds ?? []).map((id) => ({ id, name: nameOf.get(id) ?? id })),
      });
    },
  );
}
