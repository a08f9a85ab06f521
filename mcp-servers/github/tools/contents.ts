// GitHub tools on repository contents: get_file_contents (decoded, at a ref) and
// search_code.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult, trimNote, trimText } from '../../shared/tool-result.js';
import { nextPageFromLink, paginationInput, paginationOutput, repoInput } from '../client.js';
import { GhCodeSearch, GhContents } from '../upstream.js';

const filePath = z
  .string()
  .max(1000)
  .refine(
    (p) => p.split('/').every((s) => s !== '.' && s !== '..'),
    'path must not contain "." or ".." segments',
  )
  .describe('Path inside the repository, e.g. "src/index.ts"; "" for the root directory');

const ContentsResult = {
  kind: z.enum(['file', 'dir', 'symlink', 'submodule']),
  path: z.string(),
  ref: z.string().nullable(),
  sha: z.string().nullable(),
  size: z.number().nullable(),
  html_url: z.string().nullable(),
  content: z.string().nullable().describe('Decoded UTF-8 text of a file; null for binary files'),
  truncated: z.boolean(),
  binary: z.boolean(),
  entries: z
    .array(
      z.object({
        name: z.string(),
        path: z.string(),
        type: z.string(),
        size: z.number().nullable(),
      }),
    )
    .nullable(),
  target: z.string().nullable().describe('Symlink target or submodule URL'),
  note: z.string().optional(),
};

export function registerContentTools(server: McpServer, github: HttpClient): void {
  server.registerTool(
    'get_file_contents',
    {
      title: 'Get file contents',
      description:
        'Reads a file (decoded to text) or lists a directory in a repository, at a branch, tag or commit SHA (default: the default branch). Long files are trimmed to max_chars with a note; binary files are reported, not shown.',
      inputSchema: {
        ...repoInput,
        path: filePath,
        ref: z.string().max(255).optional().describe('Branch, tag or commit SHA'),
        max_chars: z.number().int().min(1_000).max(80_000).default(30_000),
      },
      outputSchema: ContentsResult,
      annotations: READS,
    },
    async (args, { signal }) => {
      const encodedPath = args.path
        .split('/')
        .filter((s) => s !== '')
        .map(encodeURIComponent)
        .join('/');
      const { data } = await github.request(GhContents, {
        method: 'GET',
        path: `${path`/repos/${args.owner}/${args.repo}/contents`}/${encodedPath}`,
        query: { ref: args.ref },
        signal,
      });
      const base = {
        ref: args.ref ?? null,
        content: null,
        truncated: false,
        binary: false,
        entries: null,
        target: null,
      };
      if (Array.isArray(data))
        return toolResult({
          ...base,
          kind: 'dir' as const,
          path: args.path,
          sha: null,
          size: null,
          html_url: null,
          entries: data.map((e) => ({
            name: e.name,
            path: e.path,
            type: e.type,
            size: e.size ?? null,
          })),
        });

      const entry = {
        ...base,
        path: data.path,
        sha: data.sha,
        size: data.size ?? null,
        html_url: data.html_url ?? null,
      };
      if (data.type === 'symlink' || data.type === 'submodule')
        return toolResult({
          ...entry,
          kind: data.type,
          target: data.target ?? data.submodule_git_url ?? null,
        });
      if (data.encoding !== 'base64' || data.content == null)
        // Files over 1 MB come back with encoding "none" and no content.
        return toolResult({
          ...entry,
          kind: 'file' as const,
          note: 'GitHub does not return the content of files larger than 1 MB through this API; open html_url instead.',
        });

      const bytes = Buffer.from(data.content, 'base64');
      if (bytes.subarray(0, 8_000).includes(0))
        return toolResult({
          ...entry,
          kind: 'file' as const,
          binary: true,
          note: `Binary file of ${bytes.length} bytes; not shown.`,
        });
      const text = trimText(bytes.toString('utf8'), args.max_chars);
      return toolResult({
        ...entry,
        kind: 'file' as const,
        content: text.text,
        truncated: text.truncated,
        ...(text.truncated && {
          note: trimNote(
            'Content',
            text,
            'raise max_chars (up to 80000) or read the file on html_url',
          ),
        }),
      });
    },
  );

  server.registerTool(
    'search_code',
    {
      title: 'Search code',
      description:
        'Searches code on GitHub with code search syntax, e.g. "createServer repo:owner/name", "addClass in:file language:js org:acme". Returns matching files with the repository, path and matched fragments. Only the default branch is indexed.',
      inputSchema: {
        query: z.string().min(1).max(256).describe('GitHub code search query'),
        ...paginationInput,
      },
      outputSchema: {
        total_count: z.number(),
        incomplete_results: z.boolean(),
        items: z.array(
          z.object({
            repository: z.string(),
            path: z.string(),
            sha: z.string(),
            html_url: z.string(),
            fragments: z.array(z.string()),
          }),
        ),
        ...paginationOutput,
      },
      annotations: READS,
    },
    async ({ query, page, per_page }, { signal }) => {
      const { data, headers } = await github.request(GhCodeSearch, {
        method: 'GET',
        path: '/search/code',
        query: { q: query, per_page, page },
        // Asks GitHub for the matched fragments alongside each file.
        headers: { accept: 'application/vnd.github.text-match+json' },
        signal,
      });
      return toolResult({
        total_count: data.total_count,
        incomplete_results: data.incomplete_results,
        items: data.items.map((item) => ({
          repository: item.repository.full_name,
          path: item.path,
          sha: item.sha,
          html_url: item.html_url,
          fragments: (item.text_matches ?? []).flatMap((m) => (m.fragment ? [m.fragment] : [])),
        })),
        page,
        per_page,
        next_page: nextPageFromLink(headers),
      });
    },
  );
}
