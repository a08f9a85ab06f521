// Raw MCP over Streamable HTTP, for tests that check the gateway's own statuses
// and headers with no SDK client in between.

/** An `initialize` request as a client sends it (id 0). */
export function initializeRequest(protocolVersion = '2025-06-18') {
  return {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: {
      protocolVersion,
      capabilities: {},
      clientInfo: { name: 'raw', version: '1.0.0' },
    },
  };
}

/**
 * A POST to an MCP endpoint with the headers a Streamable HTTP client sends;
 * `headers` add to or replace them (an undefined value leaves one out). A
 * string body goes as is (malformed bodies), anything else as JSON.
 */
export function postMcp(
  url: string | URL,
  body: unknown,
  headers: Record<string, string | undefined> = {},
): Promise<Response> {
  const sent: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  for (const [name, value] of Object.entries(headers))
    if (value === undefined) delete sent[name];
    else sent[name] = value;
  return fetch(url, {
    method: 'POST',
    headers: sent,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
