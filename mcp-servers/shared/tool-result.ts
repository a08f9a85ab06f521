// Builds tool results: JSON text for models and people, the same object as
// structuredContent for programs, and trimming of large values with a note.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** Upper bound on the text of one tool result; tools bound their own fields well below it. */
export const MAX_RESULT_TEXT_CHARS = 100_000;

export function toolResult<T extends Record<string, unknown>>(
  data: T,
): CallToolResult & { structuredContent: T } {
  let text = JSON.stringify(data, null, 2);
  if (text.length > MAX_RESULT_TEXT_CHARS)
    text = `${text.slice(0, MAX_RESULT_TEXT_CHARS)}\n… [output trimmed: showed ${MAX_RESULT_TEXT_CHARS} of ${text.length} characters; ask for fewer items or a narrower range]`;
  return { content: [{ type: 'text', text }], structuredContent: data };
}

export interface TrimmedText {
  text: string;
  truncated: boolean;
  /** Length of the untrimmed text, in characters. */
  length: number;
}

export function trimText(text: string, maxChars: number): TrimmedText {
  if (text.length <= maxChars) return { text, truncated: false, length: text.length };
  return { text: text.slice(0, maxChars), truncated: true, length: text.length };
}

/** The note that tells a model a value was cut and how to see more. */
export function trimNote(what: string, trimmed: TrimmedText, howToSeeMore: string): string {
  return `${what} trimmed to ${trimmed.text.length} of ${trimmed.length} characters; ${howToSeeMore}.`;
}
