// A `fetch` for the SDK's Streamable HTTP client, built on node:http with a
// keep-alive agent. With Node 20's built-in fetch (undici, web streams) the
// benchmark's client spent 650–1,000 µs of CPU per call, two to three times the
// MiniMCP gateway it measures, so the client set the calls/s; this one halves
// it (docs/performance.md). The SDK takes a `fetch` option for this; every
// gateway is measured through the same one.
//
// The transport passes one AbortSignal with every request; each request's
// listener on it is removed when the request ends (undici kept them until
// garbage collection, and Node warned of thousands).
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { Readable } from 'node:stream';

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const signalsSeen = new WeakSet<AbortSignal>();

function headerRecord(headers: RequestInit['headers']): Record<string, string> {
  const record: Record<string, string> = {};
  if (headers === undefined) return record;
  if (headers instanceof Headers || Array.isArray(headers)) {
    for (const [name, value] of headers) record[name] = value;
  } else Object.assign(record, headers);
  return record;
}

function responseHeaders(raw: readonly string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return headers;
}

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * POST answers (JSON, or an SSE stream the server ends after the answers) are
 * read whole before the Response is made; a GET's event stream, which stays
 * open, is handed over as it arrives.
 */
export const nodeHttpFetch: typeof fetch = (input, init) =>
  new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? 'GET';
    const signal = init?.signal ?? undefined;
    const aborted = () => new DOMException('This operation was aborted', 'AbortError');
    if (signal?.aborted) return reject(aborted());
    const request = http.request(url, { method, headers: headerRecord(init?.headers), agent });
    const onAbort = () => request.destroy(aborted());
    if (signal) {
      // One listener per request in flight, each removed when its request
      // ends: many at once is the load, not a leak (the test checks the count).
      if (!signalsSeen.has(signal)) {
        signalsSeen.add(signal);
        setMaxListeners(0, signal);
      }
      signal.addEventListener('abort', onAbort, { once: true });
    }
    const settled = () => signal?.removeEventListener('abort', onAbort);
    const fail = (error: unknown) => {
      settled();
      reject(error);
    };
    request.on('error', fail);
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      const meta = {
        status,
        statusText: response.statusMessage ?? '',
        headers: responseHeaders(response.rawHeaders),
      };
      const streaming =
        method === 'GET' && meta.headers.get('content-type')?.includes('text/event-stream');
      if (streaming) {
        response.on('close', settled);
        resolve(new Response(Readable.toWeb(response) as ReadableStream<Uint8Array>, meta));
        return;
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', fail);
      response.on('end', () => {
        settled();
        const body = NULL_BODY.has(status) ? null : Buffer.concat(chunks);
        resolve(new Response(body, meta));
      });
    });
    const body = init?.body;
    if (body !== undefined && body !== null) request.end(body as string | Buffer);
    else request.end();
  });
