// Which MCP revision a client session speaks: the revisions a client may ask
// for, and the negotiation of its initialize against the child's own.

/**
 * The MCP revisions a client may ask for: the SDK's SUPPORTED_PROTOCOL_VERSIONS
 * (a unit test keeps the two equal). Copied rather than imported: the SDK's
 * types.js builds every zod schema of the protocol on import, ~7 MB of the
 * agent's resident memory for one list of strings.
 */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = [
  '2025-11-25',
  '2025-06-18',
  '2025-03-26',
  '2024-11-05',
  '2024-10-07',
];
const SUPPORTED_VERSIONS = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);

export function isSupportedProtocolVersion(version: string): boolean {
  return SUPPORTED_VERSIONS.has(version);
}

/**
 * The version a client session speaks: the child's own when the client asks
 * for it or anything newer (the child cannot speak newer); an older version the
 * client asks for when it is one MCP defines (messages pass through unchanged,
 * and revisions only add); otherwise the child's, and the client decides.
 */
export function negotiateProtocolVersion(requested: unknown, childVersion: string): string {
  if (typeof requested !== 'string' || requested >= childVersion) return childVersion;
  return SUPPORTED_VERSIONS.has(requested) ? requested : childVersion;
}
