// Shapes the Gmail tools return (also their output schemas) and the mappers from
// Gmail's message resources to them.
import { z } from 'zod';
import { trimText } from '../shared/tool-result.js';
import { decodePayload, headerValue } from './mime.js';
import type { GmMessage } from './upstream.js';

export const MessageSummary = z.object({
  id: z.string(),
  thread_id: z.string(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  subject: z.string().nullable(),
  date: z.string().nullable(),
  snippet: z.string(),
  label_ids: z.array(z.string()),
  unread: z.boolean(),
});

export const FullMessage = z.object({
  id: z.string(),
  thread_id: z.string(),
  label_ids: z.array(z.string()),
  snippet: z.string(),
  internal_date: z.string().nullable().describe('When Gmail received the message, ISO 8601'),
  headers: z.object({
    from: z.string().nullable(),
    to: z.string().nullable(),
    cc: z.string().nullable(),
    reply_to: z.string().nullable(),
    subject: z.string().nullable(),
    date: z.string().nullable(),
    message_id: z.string().nullable().describe('Pass as in_reply_to to answer this message'),
    references: z.string().nullable(),
  }),
  body: z.string(),
  body_format: z.enum(['text', 'html_converted', 'none']),
  body_truncated: z.boolean(),
  attachments: z.array(
    z.object({
      filename: z.string(),
      mime_type: z.string(),
      size: z.number(),
      attachment_id: z.string().nullable(),
      part_id: z.string().nullable(),
    }),
  ),
});

export const METADATA_HEADERS = ['From', 'To', 'Subject', 'Date'] as const;

export function toMessageSummary(m: GmMessage): z.infer<typeof MessageSummary> {
  const labelIds = m.labelIds ?? [];
  return {
    id: m.id,
    thread_id: m.threadId,
    from: headerValue(m.payload, 'From'),
    to: headerValue(m.payload, 'To'),
    subject: headerValue(m.payload, 'Subject'),
    date: headerValue(m.payload, 'Date'),
    snippet: m.snippet ?? '',
    label_ids: labelIds,
    unread: labelIds.includes('UNREAD'),
  };
}

export function toFullMessage(m: GmMessage, maxBodyChars: number): z.infer<typeof FullMessage> {
  const decoded = decodePayload(m.payload);
  const body = trimText(decoded.text, maxBodyChars);
  const header = (name: string): string | null => headerValue(m.payload, name);
  const received = m.internalDate ? Number(m.internalDate) : NaN;
  return {
    id: m.id,
    thread_id: m.threadId,
    label_ids: m.labelIds ?? [],
    snippet: m.snippet ?? '',
    internal_date: Number.isFinite(received) ? new Date(received).toISOString() : null,
    headers: {
      from: header('From'),
      to: header('To'),
      cc: header('Cc'),
      reply_to: header('Reply-To'),
      subject: header('Subject'),
      date: header('Date'),
      message_id: header('Message-ID'),
      references: header('References'),
    },
    body: body.truncated
      ? `${body.text}\n… [body trimmed: ${body.length - body.text.length} more characters; raise max_body_chars]`
      : body.text,
    body_format: decoded.format,
    body_truncated: body.truncated,
    attachments: decoded.attachments,
  };
}
