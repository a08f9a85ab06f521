// MIME for Gmail: reading a message payload (headers, decoded text body,
// attachment list) and writing an RFC 2822 message for drafts and sending.
import { randomBytes } from 'node:crypto';
import type { GmPartShape } from './upstream.js';

export interface Attachment {
  filename: string;
  mime_type: string;
  size: number;
  attachment_id: string | null;
  part_id: string | null;
}

export interface DecodedPayload {
  /** Plain text, or text converted from HTML when there is no plain part. */
  text: string;
  format: 'text' | 'html_converted' | 'none';
  attachments: Attachment[];
}

export function headerValue(part: GmPartShape | null | undefined, name: string): string | null {
  const lower = name.toLowerCase();
  return part?.headers?.find((h) => h.name.toLowerCase() === lower)?.value ?? null;
}

export function decodePayload(payload: GmPartShape | null | undefined): DecodedPayload {
  const plain: string[] = [];
  const html: string[] = [];
  const attachments: Attachment[] = [];
  const walk = (part: GmPartShape): void => {
    if (part.parts && part.parts.length > 0) {
      for (const child of part.parts) walk(child);
      return;
    }
    const mimeType = (part.mimeType ?? '').toLowerCase();
    if (part.filename) {
      attachments.push({
        filename: part.filename,
        mime_type: mimeType || 'application/octet-stream',
        size: part.body?.size ?? 0,
        attachment_id: part.body?.attachmentId ?? null,
        part_id: part.partId ?? null,
      });
      return;
    }
    const data = part.body?.data;
    if (!data) return;
    if (mimeType === 'text/plain') plain.push(decodeBody(data, part));
    else if (mimeType === 'text/html') html.push(decodeBody(data, part));
  };
  if (payload) walk(payload);
  if (plain.length > 0) return { text: plain.join('\n\n'), format: 'text', attachments };
  if (html.length > 0)
    return { text: htmlToText(html.join('\n')), format: 'html_converted', attachments };
  return { text: '', format: 'none', attachments };
}

function decodeBody(data: string, part: GmPartShape): string {
  const bytes = Buffer.from(data, 'base64url');
  const charset =
    /charset="?([^";\s]+)"?/i.exec(headerValue(part, 'Content-Type') ?? '')?.[1] ?? 'utf-8';
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    // An unknown charset label: UTF-8 shows most text correctly, which beats failing the read.
    return new TextDecoder('utf-8').decode(bytes);
  }
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};

export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '\n- ')
    .replace(/<\/?(p|div|tr|h[1-6]|ul|ol|table|blockquote)\b[^>]*>/gi, '\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity, code: string) => {
      if (code.startsWith('#x') || code.startsWith('#X'))
        return String.fromCodePoint(parseInt(code.slice(2), 16));
      if (code.startsWith('#')) return String.fromCodePoint(Number(code.slice(1)));
      return ENTITIES[code.toLowerCase()] ?? entity;
    })
    .split('\n')
    .map((line) => line.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export interface OutgoingMessage {
  to: string[];
  cc?: string[];
  bcc?: string[];
  subject: string;
  text: string;
  html?: string;
  inReplyTo?: string;
  references?: string;
}

/** An RFC 2822 message, CRLF line ends, UTF-8 bodies in base64: what Gmail's `raw` field takes. */
export function buildRawMessage(message: OutgoingMessage): string {
  const headers: string[] = [];
  if (message.to.length > 0) headers.push(`To: ${message.to.map(encodeAddress).join(', ')}`);
  if (message.cc?.length) headers.push(`Cc: ${message.cc.map(encodeAddress).join(', ')}`);
  if (message.bcc?.length) headers.push(`Bcc: ${message.bcc.map(encodeAddress).join(', ')}`);
  headers.push(`Subject: ${encodeWords(message.subject)}`);
  if (message.inReplyTo) headers.push(`In-Reply-To: ${message.inReplyTo}`);
  if (message.references ?? message.inReplyTo)
    headers.push(`References: ${message.references ?? message.inReplyTo}`);
  headers.push('MIME-Version: 1.0');

  const textPart = ['Content-Type: text/plain; charset="UTF-8"', ...base64Body(message.text)];
  if (message.html === undefined) return [...headers, ...textPart].join('\r\n');

  const boundary = `minimcp_${randomBytes(12).toString('hex')}`;
  return [
    ...headers,
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    ...textPart,
    `--${boundary}`,
    'Content-Type: text/html; charset="UTF-8"',
    ...base64Body(message.html),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

export function toBase64Url(raw: string): string {
  return Buffer.from(raw, 'utf8').toString('base64url');
}

function base64Body(text: string): string[] {
  const encoded = Buffer.from(text, 'utf8').toString('base64');
  const lines = encoded.match(/.{1,76}/g) ?? [];
  return ['Content-Transfer-Encoding: base64', '', ...lines, ''];
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** RFC 2047 encoded words for non-ASCII text, split so each word stays under 75 characters. */
export function encodeWords(text: string): string {
  if (PRINTABLE_ASCII.test(text)) return text;
  const words: string[] = [];
  let chunk = '';
  for (const char of text) {
    if (Buffer.byteLength(chunk + char, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join('\r\n ');
}

function encodeAddress(address: string): string {
  const match = /^\s*(.*?)\s*<([^<>]+)>\s*$/.exec(address);
  if (!match) return address.trim();
  const [, name = '', email = ''] = match;
  if (!name) return `<${email}>`;
  const unquoted = name.replace(/^"(.*)"$/, '$1');
  return PRINTABLE_ASCII.test(unquoted)
    ? `"${unquoted.replace(/(["\\])/g, '\\$1')}" <${email}>`
    : `${encodeWords(unquoted)} <${email}>`;
}
