// Tool annotations of the upstream-backed servers, one per kind of effect, so
// hints stay consistent across GitHub, Gmail and Figma.
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';

/** Reads from the service; changes nothing. */
export const READS: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: true,
};

/** Adds something new (an issue, a comment, a draft); calling twice adds twice. */
export const ADDS: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: true,
};

/** Overwrites existing state (fields, labels); repeating the same call changes nothing more. */
export const UPDATES: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: true,
  openWorldHint: true,
};
