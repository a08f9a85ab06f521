// A scripted fake of a third-party HTTP API (GitHub, Gmail, Figma) on loopback
// for the built-in MCP server tests: each expected request is matched on method,
// path and exact query, its headers and body are asserted, and its reply is sent.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface ExpectedRequest {
  method: string;
  path: string;
  /** The exact query string (arrays for repeated keys); omitted means no query at all. */
  query?: Record<string, string | string[]>;
  /** Header values that must match (lowercase names), on top of the fake's default headers. */
  headers?: Record<string, string>;
  /** The exact JSON body (and a JSON content type). */
  json?: unknown;
  /** The exact application/x-www-form-urlencoded body. */
  form?: Record<string, string>;
  /** Further assertions on the request; throw to fail. */
  check?: (request: RecordedRequest) => void;
}

export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string;
  /** Never answer, so the client's timeout fires. */
  hang?: boolean;
}

export interface FakeUpstream {
  url: string;
  /** Queues an expected request; requests may arrive in any order among the queued ones. */
  expect(request: ExpectedRequest, reply: FakeReply): void;
  /** Throws when a request did not match or an expected one never came, then starts afresh. */
  verify(): void;
  /** Every request received so far. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Query entries in a canonical order, for comparison. */
function entries(query: URLSearchParams | Record<string, string | string[]>): string[] {
  const pairs =
    query instanceof URLSearchParams
      ? [...query.entries()]
      : Object.entries(query).flatMap(([k, v]) =>
          Array.isArray(v) ? v.map((i) => [k, i]) : [[k, v]],
        );
  return pairs.map(([k, v]) => `${k}=${v}`).sort();
}

function describeRequest(r: {
  method: string;
  path: string;
  query?: URLSearchParams | Record<string, string | string[]>;
}): string {
  const query = entries(r.query ?? {});
  return `${r.method} ${r.path}${query.length ? `?${query.join('&')}` : ''}`;
}

export async function startFakeUpstream(
  options: { headers?: Record<string, string> } = {},
): Promise<FakeUpstream> {
  const pending: { request: ExpectedRequest; reply: FakeReply }[] = [];
  const failures: string[] = [];
  const requests: RecordedRequest[] = [];
  const hanging = new Set<http.ServerResponse>();

  const problems = (expected: ExpectedRequest, got: RecordedRequest): string[] => {
    const out: string[] = [];
    const headers = { ...options.headers, ...expected.headers };
    for (const [name, value] of Object.entries(headers))
      if (got.headers[name] !== value)
        out.push(
          `header ${name}: expected ${JSON.stringify(value)}, got ${JSON.stringify(got.headers[name])}`,
        );
    if (expected.json !== undefined) {
      if (!String(got.headers['content-type']).startsWith('application/json'))
        out.push(
          `content-type: expected application/json, got ${String(got.headers['content-type'])}`,
        );
      let body: unknown;
      try {
        body = JSON.parse(got.body);
      } catch {
        // Not JSON: compare the raw text, so the mismatch message shows what came.
        body = got.body;
      }
      if (!isDeepStrictEqual(body, expected.json))
        out.push(`json body: expected ${JSON.stringify(expected.json)}, got ${got.body}`);
    } else if (expected.form !== undefined) {
      const form = Object.fromEntries(new URLSearchParams(got.body));
      if (!isDeepStrictEqual(form, expected.form))
        out.push(`form body: expected ${JSON.stringify(expected.form)}, got ${got.body}`);
    } else if (expected.check === undefined && got.body !== '') {
      out.push(`body: expected none, got ${got.body.slice(0, 200)}`);
    }
    if (expected.check) {
      try {
        expected.check(got);
      } catch (error) {
        out.push(`check: ${(error as Error).message}`);
      }
    }
    return out;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const got: RecordedRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(got);
      const index = pending.findIndex(
        ({ request }) =>
          request.method === got.method &&
          request.path === got.path &&
          isDeepStrictEqual(entries(request.query ?? {}), entries(got.query)),
      );
      const match = index === -1 ? undefined : pending.splice(index, 1)[0];
      if (!match) {
        failures.push(
          `unexpected request ${describeRequest(got)}; pending: ${pending.map((p) => describeRequest(p.request)).join(', ') || 'none'}`,
        );
        res
          .writeHead(418, { 'content-type': 'application/json' })
          .end('{"message":"unexpected request"}');
        return;
      }
      const mismatches = problems(match.request, got);
      if (mismatches.length > 0) {
        failures.push(`${describeRequest(got)}: ${mismatches.join('; ')}`);
        res
          .writeHead(418, { 'content-type': 'application/json' })
          .end('{"message":"request mismatch"}');
        return;
      }
      const { reply } = match;
      if (reply.hang) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      const body = reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? '');
      const type =
        reply.json !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {};
      res.writeHead(reply.status ?? 200, { ...type, ...reply.headers }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    expect(request, reply) {
      pending.push({ request, reply });
    },
    verify() {
      const problemsFound = [
        ...failures,
        ...pending.map((p) => `expected request never came: ${describeRequest(p.request)}`),
      ];
      failures.length = 0;
      pending.length = 0;
      if (problemsFound.length > 0) throw new Error(`fake upstream:\n${problemsFound.join('\n')}`);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((e) => (e ? reject(e) : resolve())),
      );
    },
  };
}
