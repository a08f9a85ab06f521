// The GitHub MCP server over stdio against a fake GitHub REST v3: every tool's
// request and result, error mapping (401, 403 scopes, 404, 422, rate limits,
// 5xx, timeouts), retries, pagination, and that the token never leaks.
import { describe, expect, test } from '@jest/globals';
import { textOf } from '../../support/mcp-child.js';
import { useServerUnderTest } from '../../support/server-under-test.js';

const TOKEN = 'ghp_TestToken_0123456789abcdefghijklmnop';

const user = (login: string) => ({
  login,
  id: 1,
  html_url: `https://github.com/${login}`,
  type: 'User',
  site_admin: false,
});

const repository = {
  id: 1296269,
  node_id: 'MDEwOlJlcG9zaXRvcnkxMjk2MjY5',
  name: 'Hello-World',
  full_name: 'octocat/Hello-World',
  owner: user('octocat'),
  private: false,
  html_url: 'https://github.com/octocat/Hello-World',
  description: 'This your first repo!',
  fork: false,
  language: 'TypeScript',
  forks_count: 9,
  stargazers_count: 80,
  watchers_count: 80,
  open_issues_count: 3,
  default_branch: 'main',
  topics: ['octocat', 'api'],
  archived: false,
  visibility: 'public',
  homepage: 'https://github.com',
  license: { key: 'mit', name: 'MIT License', spdx_id: 'MIT' },
  pushed_at: '2011-01-26T19:06:43Z',
  created_at: '2011-01-26T19:01:12Z',
  updated_at: '2011-01-26T19:14:43Z',
};

const issue = (number: number, extra: Record<string, unknown> = {}) => ({
  id: 1000 + number,
  number,
  title: `Found a bug ${number}`,
  state: 'open',
  state_reason: null,
  body: "I'm having a problem with this.",
  user: user('octocat'),
  labels: [{ id: 208045946, name: 'bug', color: 'f29513' }],
  assignees: [user('hubot')],
  milestone: { number: 1, title: 'v1.0' },
  comments: 0,
  created_at: '2011-04-22T13:33:48Z',
  updated_at: '2011-04-22T13:33:48Z',
  closed_at: null,
  html_url: `https://github.com/octocat/Hello-World/issues/${number}`,
  ...extra,
});

const pull = (number: number, extra: Record<string, unknown> = {}) => ({
  id: 2000 + number,
  number,
  title: 'Amazing new feature',
  state: 'open',
  draft: false,
  user: user('octocat'),
  body: 'Please pull these awesome changes in!',
  labels: [{ name: 'enhancement' }],
  head: {
    label: 'octocat:new-topic',
    ref: 'new-topic',
    sha: '6dcb09b5b57875f334f61aebed695e2e4193db5e',
  },
  base: { label: 'octocat:main', ref: 'main', sha: '6dcb09b5b57875f334f61aebed695e2e4193db5f' },
  created_at: '2011-01-26T19:01:12Z',
  updated_at: '2011-01-26T19:01:12Z',
  closed_at: null,
  merged_at: null,
  html_url: `https://github.com/octocat/Hello-World/pull/${number}`,
  ...extra,
});

const link = (url: string, path: string, next: number, last: number, extra = '') =>
  `<${url}${path}?${extra}page=${next}>; rel="next", <${url}${path}?${extra}page=${last}>; rel="last"`;

describe('GitHub MCP server', () => {
  const server = useServerUnderTest({
    server: 'github',
    key: TOKEN,
    config: { api_version: 'v3', timeout_ms: 2500, max_retries: 1 },
    upstreamHeaders: {
      authorization: `Bearer ${TOKEN}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': 'MiniMCP-GitHub-MCP/0.1',
    },
  });
  const { call } = server;

  test('lists its thirteen tools with annotations', async () => {
    const { tools } = await server.child.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        'add_issue_comment',
        'create_issue',
        'get_authenticated_user',
        'get_file_contents',
        'get_issue',
        'get_pull_request',
        'get_repository',
        'list_commits',
        'list_issues',
        'list_pull_requests',
        'search_code',
        'search_repositories',
        'update_issue',
      ].sort(),
    );
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('get_repository')?.annotations).toEqual({
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: true,
    });
    expect(byName.get('create_issue')?.annotations).toMatchObject({
      readOnlyHint: false,
      idempotentHint: false,
    });
    expect(byName.get('update_issue')?.annotations).toMatchObject({
      destructiveHint: true,
      idempotentHint: true,
    });
    for (const tool of tools) {
      expect(tool.description?.length).toBeGreaterThan(40);
      expect(tool.outputSchema?.type).toBe('object');
    }
  });

  describe('tools', () => {
    test('search_repositories passes the query and paginates with the Link header', async () => {
      server.upstream.expect(
        {
          method: 'GET',
          path: '/search/repositories',
          query: {
            q: 'mcp language:typescript',
            sort: 'stars',
            order: 'desc',
            per_page: '2',
            page: '2',
          },
        },
        {
          json: { total_count: 40, incomplete_results: false, items: [repository] },
          headers: {
            link: link(
              'https://api.github.com',
              '/search/repositories',
              3,
              20,
              'q=mcp&per_page=2&',
            ),
          },
        },
      );

      const result = await call('search_repositories', {
        query: 'mcp language:typescript',
        sort: 'stars',
        order: 'desc',
        per_page: 2,
        page: 2,
      });

      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toEqual({
        total_count: 40,
        incomplete_results: false,
        items: [
          {
            full_name: 'octocat/Hello-World',
            description: 'This your first repo!',
            private: false,
            fork: false,
            archived: false,
            html_url: 'https://github.com/octocat/Hello-World',
            default_branch: 'main',
            language: 'TypeScript',
            stars: 80,
            forks: 9,
            open_issues: 3,
            topics: ['octocat', 'api'],
            updated_at: '2011-01-26T19:14:43Z',
            pushed_at: '2011-01-26T19:06:43Z',
          },
        ],
        page: 2,
        per_page: 2,
        next_page: 3,
      });
      expect(JSON.parse(textOf(result))).toEqual(result.structuredContent);
    });

    test('get_repository returns the repository details', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World' },
        { json: repository },
      );

      const result = await call('get_repository', { owner: 'octocat', repo: 'Hello-World' });

      expect(result.structuredContent).toMatchObject({
        full_name: 'octocat/Hello-World',
        visibility: 'public',
        license: 'MIT',
        homepage: 'https://github.com',
        created_at: '2011-01-26T19:01:12Z',
      });
    });

    test('list_issues filters, leaves out pull requests and reports the last page', async () => {
      server.upstream.expect(
        {
          method: 'GET',
          path: '/repos/octocat/Hello-World/issues',
          query: {
            state: 'all',
            labels: 'bug,ui',
            sort: 'updated',
            direction: 'asc',
            since: '2024-01-01T00:00:00Z',
            per_page: '30',
            page: '1',
          },
        },
        { json: [issue(1347), issue(1348, { pull_request: { url: 'https://api.github.com/x' } })] },
      );

      const result = await call('list_issues', {
        owner: 'octocat',
        repo: 'Hello-World',
        state: 'all',
        labels: ['bug', 'ui'],
        sort: 'updated',
        direction: 'asc',
        since: '2024-01-01T00:00:00Z',
      });

      expect(result.structuredContent).toEqual({
        items: [
          {
            number: 1347,
            title: 'Found a bug 1347',
            state: 'open',
            state_reason: null,
            author: 'octocat',
            labels: ['bug'],
            assignees: ['hubot'],
            milestone: 'v1.0',
            comments: 0,
            is_pull_request: false,
            created_at: '2011-04-22T13:33:48Z',
            updated_at: '2011-04-22T13:33:48Z',
            closed_at: null,
            html_url: 'https://github.com/octocat/Hello-World/issues/1347',
          },
        ],
        page: 1,
        per_page: 30,
        next_page: null,
      });
    });

    test('get_issue returns the body and a page of comments', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World/issues/1347' },
        { json: issue(1347, { comments: 3 }) },
      );
      server.upstream.expect(
        {
          method: 'GET',
          path: '/repos/octocat/Hello-World/issues/1347/comments',
          query: { per_page: '2', page: '1' },
        },
        {
          json: [
            {
              id: 1,
              user: user('hubot'),
              body: 'Me too',
              created_at: '2011-04-14T16:00:49Z',
              html_url: 'https://github.com/octocat/Hello-World/issues/1347#issuecomment-1',
            },
          ],
          headers: {
            link: link(
              server.upstream.url,
              '/repositories/1/issues/1347/comments',
              2,
              2,
              'per_page=2&',
            ),
          },
        },
      );

      const result = await call('get_issue', {
        owner: 'octocat',
        repo: 'Hello-World',
        issue_number: 1347,
        comments_per_page: 2,
      });

      expect(result.structuredContent).toMatchObject({
        number: 1347,
        comments: 3,
        body: "I'm having a problem with this.",
        body_truncated: false,
        comment_list: [{ id: 1, author: 'hubot', body: 'Me too' }],
        comments_next_page: 2,
      });
    });

    test('get_issue trims a huge body with a marker', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World/issues/7' },
        { json: issue(7, { body: 'x'.repeat(25_000) }) },
      );

      const result = await call('get_issue', {
        owner: 'octocat',
        repo: 'Hello-World',
        issue_number: 7,
      });

      const content = result.structuredContent as { body: string; body_truncated: boolean };
      expect(content.body_truncated).toBe(true);
      expect(content.body).toMatch(/^x{20000}\n… \[trimmed: 5000 more characters\]$/);
    });

    test('create_issue posts the fields as JSON', async () => {
      server.upstream.expect(
        {
          method: 'POST',
          path: '/repos/octocat/Hello-World/issues',
          json: {
            title: 'Found a bug',
            body: 'Steps: ...',
            labels: ['bug'],
            assignees: ['octocat'],
          },
        },
        { status: 201, json: issue(1350, { title: 'Found a bug' }) },
      );

      const result = await call('create_issue', {
        owner: 'octocat',
        repo: 'Hello-World',
        title: 'Found a bug',
        body: 'Steps: ...',
        labels: ['bug'],
        assignees: ['octocat'],
      });

      expect(result.structuredContent).toMatchObject({
        number: 1350,
        title: 'Found a bug',
        state: 'open',
      });
    });

    test('update_issue sends only the fields given', async () => {
      server.upstream.expect(
        {
          method: 'PATCH',
          path: '/repos/octocat/Hello-World/issues/1347',
          json: { state: 'closed', state_reason: 'not_planned', milestone: null },
        },
        {
          json: issue(1347, {
            state: 'closed',
            state_reason: 'not_planned',
            closed_at: '2024-02-01T00:00:00Z',
          }),
        },
      );

      const result = await call('update_issue', {
        owner: 'octocat',
        repo: 'Hello-World',
        issue_number: 1347,
        state: 'closed',
        state_reason: 'not_planned',
        milestone: null,
      });

      expect(result.structuredContent).toMatchObject({
        state: 'closed',
        state_reason: 'not_planned',
        closed_at: '2024-02-01T00:00:00Z',
      });
    });

    test('update_issue without changes is refused before calling GitHub', async () => {
      const result = await call('update_issue', {
        owner: 'octocat',
        repo: 'Hello-World',
        issue_number: 1,
      });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('Nothing to update');
    });

    test('add_issue_comment posts the body', async () => {
      server.upstream.expect(
        {
          method: 'POST',
          path: '/repos/octocat/Hello-World/issues/1347/comments',
          json: { body: 'Fixed in #1350' },
        },
        {
          status: 201,
          json: {
            id: 99,
            user: user('octocat'),
            body: 'Fixed in #1350',
            created_at: '2024-02-01T00:00:00Z',
            html_url: 'https://github.com/octocat/Hello-World/issues/1347#issuecomment-99',
          },
        },
      );

      const result = await call('add_issue_comment', {
        owner: 'octocat',
        repo: 'Hello-World',
        issue_number: 1347,
        body: 'Fixed in #1350',
      });

      expect(result.structuredContent).toEqual({
        id: 99,
        author: 'octocat',
        body: 'Fixed in #1350',
        created_at: '2024-02-01T00:00:00Z',
        html_url: 'https://github.com/octocat/Hello-World/issues/1347#issuecomment-99',
      });
    });

    test('list_pull_requests filters by base and paginates', async () => {
      server.upstream.expect(
        {
          method: 'GET',
          path: '/repos/octocat/Hello-World/pulls',
          query: {
            state: 'open',
            base: 'main',
            sort: 'created',
            direction: 'desc',
            per_page: '1',
            page: '1',
          },
        },
        {
          json: [pull(1347, { merged_at: null })],
          headers: {
            link: link(
              server.upstream.url,
              '/repos/octocat/Hello-World/pulls',
              2,
              5,
              'per_page=1&',
            ),
          },
        },
      );

      const result = await call('list_pull_requests', {
        owner: 'octocat',
        repo: 'Hello-World',
        base: 'main',
        per_page: 1,
      });

      expect(result.structuredContent).toMatchObject({
        items: [
          {
            number: 1347,
            draft: false,
            merged: false,
            head: 'octocat:new-topic',
            base: 'main',
            labels: ['enhancement'],
          },
        ],
        next_page: 2,
      });
    });

    test('get_pull_request returns files, trimmed patches and a diff summary', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World/pulls/1347' },
        {
          json: pull(1347, {
            merged: false,
            mergeable: true,
            mergeable_state: 'clean',
            commits: 3,
            additions: 103,
            deletions: 3,
            changed_files: 2,
          }),
        },
      );
      server.upstream.expect(
        {
          method: 'GET',
          path: '/repos/octocat/Hello-World/pulls/1347/files',
          query: { per_page: '100', page: '1' },
        },
        {
          json: [
            {
              sha: 'bbcd538c8e72b8c175046e27cc8f907076331401',
              filename: 'file1.txt',
              status: 'added',
              additions: 100,
              deletions: 0,
              changes: 100,
              patch: `@@ -0,0 +1,100 @@\n${'+line\n'.repeat(100)}`,
            },
            {
              sha: 'ccdd538c8e72b8c175046e27cc8f907076331401',
              filename: 'src/b.ts',
              previous_filename: 'src/a.ts',
              status: 'renamed',
              additions: 3,
              deletions: 3,
              changes: 6,
              patch: '@@ -1 +1 @@\n-a\n+b',
            },
          ],
        },
      );

      const result = await call('get_pull_request', {
        owner: 'octocat',
        repo: 'Hello-World',
        pull_number: 1347,
        max_patch_chars: 100,
      });

      const content = result.structuredContent as Record<string, unknown> & {
        files: { patch: string | null; patch_truncated: boolean }[];
      };
      expect(content).toMatchObject({
        number: 1347,
        head_sha: '6dcb09b5b57875f334f61aebed695e2e4193db5e',
        mergeable: true,
        mergeable_state: 'clean',
        commits: 3,
        diff_summary: {
          changed_files: 2,
          additions: 103,
          deletions: 3,
          files_by_status: { added: 1, renamed: 1 },
        },
        files_next_page: null,
      });
      expect(content.files[0]).toMatchObject({
        filename: 'file1.txt',
        status: 'added',
        patch_truncated: true,
      });
      expect(content.files[0]?.patch).toHaveLength(100);
      expect(content.files[1]).toEqual({
        filename: 'src/b.ts',
        previous_filename: 'src/a.ts',
        status: 'renamed',
        additions: 3,
        deletions: 3,
        changes: 6,
        patch: '@@ -1 +1 @@\n-a\n+b',
        patch_truncated: false,
      });
      expect(content.note).toMatch(/1 patch\(es\) trimmed/);
    });

    test('get_file_contents decodes a file at a ref, encoding the path', async () => {
      const text = 'export const greeting = "héllo";\n'.repeat(3);
      server.upstream.expect(
        {
          method: 'GET',
          path: '/repos/octocat/Hello-World/contents/src/my%20dir/index.ts',
          query: { ref: 'v1.2.0' },
        },
        {
          json: {
            type: 'file',
            encoding: 'base64',
            size: Buffer.byteLength(text),
            name: 'index.ts',
            path: 'src/my dir/index.ts',
            // GitHub wraps the base64 at 60 characters.
            content: Buffer.from(text)
              .toString('base64')
              .replace(/(.{60})/g, '$1\n'),
            sha: '3d21ec53a331a6f037a91c368710b99387d012c1',
            html_url: 'https://github.com/octocat/Hello-World/blob/v1.2.0/src/my%20dir/index.ts',
          },
        },
      );

      const result = await call('get_file_contents', {
        owner: 'octocat',
        repo: 'Hello-World',
        path: 'src/my dir/index.ts',
        ref: 'v1.2.0',
      });

      expect(result.structuredContent).toMatchObject({
        kind: 'file',
        path: 'src/my dir/index.ts',
        ref: 'v1.2.0',
        content: text,
        truncated: false,
        binary: false,
      });
    });

    test('get_file_contents trims long files and reports binary ones', async () => {
      const long = 'a'.repeat(1_500);
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World/contents/long.txt' },
        {
          json: {
            type: 'file',
            encoding: 'base64',
            size: long.length,
            name: 'long.txt',
            path: 'long.txt',
            content: Buffer.from(long).toString('base64'),
            sha: 'a1',
          },
        },
      );
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World/contents/logo.png' },
        {
          json: {
            type: 'file',
            encoding: 'base64',
            size: 6,
            name: 'logo.png',
            path: 'logo.png',
            content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01]).toString('base64'),
            sha: 'b2',
          },
        },
      );

      const long1 = await call('get_file_contents', {
        owner: 'octocat',
        repo: 'Hello-World',
        path: 'long.txt',
        max_chars: 1_000,
      });
      const binary = await call('get_file_contents', {
        owner: 'octocat',
        repo: 'Hello-World',
        path: 'logo.png',
      });

      expect(long1.structuredContent).toMatchObject({
        content: 'a'.repeat(1_000),
        truncated: true,
      });
      expect((long1.structuredContent as { note: string }).note).toContain(
        'trimmed to 1000 of 1500 characters',
      );
      expect(binary.structuredContent).toMatchObject({ binary: true, content: null });
    });

    test('get_file_contents lists a directory', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World/contents/' },
        {
          json: [
            { type: 'file', size: 625, name: 'README.md', path: 'README.md', sha: 'c1' },
            { type: 'dir', size: 0, name: 'src', path: 'src', sha: 'c2' },
          ],
        },
      );

      const result = await call('get_file_contents', {
        owner: 'octocat',
        repo: 'Hello-World',
        path: '',
      });

      expect(result.structuredContent).toMatchObject({
        kind: 'dir',
        entries: [
          { name: 'README.md', path: 'README.md', type: 'file', size: 625 },
          { name: 'src', path: 'src', type: 'dir', size: 0 },
        ],
      });
    });

    test('get_file_contents refuses ".." in a path', async () => {
      const result = await call('get_file_contents', {
        owner: 'octocat',
        repo: 'Hello-World',
        path: '../../user',
      });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/"\.\."/);
    });

    test('search_code asks for text matches and returns fragments', async () => {
      server.upstream.expect(
        {
          method: 'GET',
          path: '/search/code',
          query: { q: 'addClass repo:jquery/jquery', per_page: '30', page: '1' },
          headers: { accept: 'application/vnd.github.text-match+json' },
        },
        {
          json: {
            total_count: 7,
            incomplete_results: false,
            items: [
              {
                name: 'classes.js',
                path: 'src/attributes/classes.js',
                sha: 'd7212f9dee2dcc18f084d7df8f417b80846ded5a',
                html_url: 'https://github.com/jquery/jquery/blob/825ac37/src/attributes/classes.js',
                repository: { full_name: 'jquery/jquery' },
                score: 1,
                text_matches: [{ fragment: 'addClass: function( value ) {', property: 'content' }],
              },
            ],
          },
        },
      );

      const result = await call('search_code', { query: 'addClass repo:jquery/jquery' });

      expect(result.structuredContent).toEqual({
        total_count: 7,
        incomplete_results: false,
        items: [
          {
            repository: 'jquery/jquery',
            path: 'src/attributes/classes.js',
            sha: 'd7212f9dee2dcc18f084d7df8f417b80846ded5a',
            html_url: 'https://github.com/jquery/jquery/blob/825ac37/src/attributes/classes.js',
            fragments: ['addClass: function( value ) {'],
          },
        ],
        page: 1,
        per_page: 30,
        next_page: null,
      });
    });

    test('list_commits filters by path and time and paginates', async () => {
      server.upstream.expect(
        {
          method: 'GET',
          path: '/repos/octocat/Hello-World/commits',
          query: {
            sha: 'main',
            path: 'src',
            since: '2024-01-01T00:00:00Z',
            per_page: '1',
            page: '3',
          },
        },
        {
          json: [
            {
              sha: '6dcb09b5b57875f334f61aebed695e2e4193db5e',
              html_url: 'https://github.com/octocat/Hello-World/commit/6dcb09b',
              commit: {
                message: 'Fix all the bugs\n\nLong description',
                author: {
                  name: 'Monalisa Octocat',
                  email: 'support@github.com',
                  date: '2011-04-14T16:00:49Z',
                },
                committer: {
                  name: 'Monalisa Octocat',
                  email: 'support@github.com',
                  date: '2011-04-14T16:00:50Z',
                },
              },
              author: user('octocat'),
            },
          ],
          headers: {
            link: link(
              server.upstream.url,
              '/repos/octocat/Hello-World/commits',
              4,
              9,
              'per_page=1&',
            ),
          },
        },
      );

      const result = await call('list_commits', {
        owner: 'octocat',
        repo: 'Hello-World',
        sha: 'main',
        path: 'src',
        since: '2024-01-01T00:00:00Z',
        per_page: 1,
        page: 3,
      });

      expect(result.structuredContent).toEqual({
        items: [
          {
            sha: '6dcb09b5b57875f334f61aebed695e2e4193db5e',
            message: 'Fix all the bugs\n\nLong description',
            author_name: 'Monalisa Octocat',
            author_login: 'octocat',
            date: '2011-04-14T16:00:49Z',
            html_url: 'https://github.com/octocat/Hello-World/commit/6dcb09b',
          },
        ],
        page: 3,
        per_page: 1,
        next_page: 4,
      });
    });

    test('get_authenticated_user reads the scopes and the rate limit', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/user' },
        {
          json: {
            ...user('octocat'),
            name: 'monalisa octocat',
            email: null,
            public_repos: 2,
            created_at: '2008-01-14T04:33:35Z',
          },
          headers: {
            'x-oauth-scopes': 'repo, read:user',
            'x-ratelimit-limit': '5000',
            'x-ratelimit-remaining': '4999',
            'x-ratelimit-reset': '1700000000',
          },
        },
      );

      const result = await call('get_authenticated_user');

      expect(result.structuredContent).toMatchObject({
        login: 'octocat',
        name: 'monalisa octocat',
        email: null,
        public_repos: 2,
        scopes: ['repo', 'read:user'],
        rate_limit: { limit: 5000, remaining: 4999, resets_at: '2023-11-14T22:13:20.000Z' },
      });
    });
  });

  describe('upstream failures', () => {
    test('bad credentials (401) become a clear error that never repeats the token', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/user' },
        // An upstream that echoes the token back must not get it into the result or the logs.
        {
          status: 401,
          json: {
            message: `Bad credentials for ${TOKEN}`,
            documentation_url: 'https://docs.github.com/rest',
          },
        },
      );

      const result = await call('get_authenticated_user');

      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(
        'GitHub rejected the credentials (HTTP 401: Bad credentials for [REDACTED])',
      );
      expect(textOf(result)).toContain('store a new key');
    });

    test('not found (404) names the request and the scopes GitHub wanted', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/secret' },
        {
          status: 404,
          json: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' },
          headers: { 'x-accepted-oauth-scopes': 'repo', 'x-oauth-scopes': 'read:user' },
        },
      );

      const result = await call('get_repository', { owner: 'octocat', repo: 'secret' });

      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(
        'Not found on GitHub (HTTP 404: Not Found): GET /repos/octocat/secret',
      );
      expect(textOf(result)).toContain('accepts the OAuth scopes: repo; the key has: read:user');
    });

    test('an exhausted rate limit (403) is reported with its reset time, without retrying', async () => {
      const reset = Math.floor(Date.now() / 1000) + 3600;
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World' },
        {
          status: 403,
          json: { message: 'API rate limit exceeded for user ID 1.' },
          headers: {
            'x-ratelimit-limit': '5000',
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': String(reset),
          },
        },
      );

      const result = await call('get_repository', { owner: 'octocat', repo: 'Hello-World' });

      expect(result.isError).toBe(true);
      const resetIso = new Date(reset * 1000).toISOString().replace('.000Z', 'Z');
      expect(textOf(result)).toContain(
        'Rate limited by GitHub (HTTP 403: API rate limit exceeded for user ID 1.)',
      );
      expect(textOf(result)).toContain(`resets at ${resetIso} (in about 60 min)`);
    });

    test('a secondary rate limit (429 with Retry-After) is waited out and retried', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World' },
        {
          status: 429,
          json: { message: 'You have exceeded a secondary rate limit.' },
          headers: { 'retry-after': '1' },
        },
      );
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World' },
        { json: repository },
      );

      const result = await call('get_repository', { owner: 'octocat', repo: 'Hello-World' });

      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ full_name: 'octocat/Hello-World' });
    });

    test('a rate limit that outlasts the retries reports the reset time', async () => {
      for (let i = 0; i < 2; i++)
        server.upstream.expect(
          {
            method: 'GET',
            path: '/search/code',
            query: { q: 'x', per_page: '30', page: '1' },
            headers: { accept: 'application/vnd.github.text-match+json' },
          },
          { status: 429, json: { message: 'rate limited' }, headers: { 'retry-after': '0' } },
        );

      const result = await call('search_code', { query: 'x' });

      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(
        /Rate limited by GitHub \(HTTP 429: rate limited\).*resets at/,
      );
    });

    test('a 5xx on a read is retried', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World' },
        { status: 502, text: 'Bad Gateway' },
      );
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/Hello-World' },
        { json: repository },
      );

      const result = await call('get_repository', { owner: 'octocat', repo: 'Hello-World' });

      expect(result.structuredContent).toMatchObject({ full_name: 'octocat/Hello-World' });
    });

    test('a 5xx on a create is not retried, so no duplicate issue is made', async () => {
      server.upstream.expect(
        { method: 'POST', path: '/repos/octocat/Hello-World/issues', json: { title: 'Once' } },
        { status: 500, json: { message: 'Server Error' } },
      );

      const result = await call('create_issue', {
        owner: 'octocat',
        repo: 'Hello-World',
        title: 'Once',
      });

      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(
        'GitHub failed with a server error (HTTP 500: Server Error)',
      );
    });

    test('validation errors (422) list what GitHub objected to', async () => {
      server.upstream.expect(
        {
          method: 'POST',
          path: '/repos/octocat/Hello-World/issues',
          json: { title: 'x', labels: ['nope'] },
        },
        {
          status: 422,
          json: {
            message: 'Validation Failed',
            errors: [
              {
                resource: 'Label',
                code: 'invalid',
                field: 'labels',
                message: 'label nope does not exist',
              },
            ],
          },
        },
      );

      const result = await call('create_issue', {
        owner: 'octocat',
        repo: 'Hello-World',
        title: 'x',
        labels: ['nope'],
      });

      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('(HTTP 422: Validation Failed: label nope does not exist)');
    });

    test('a GitHub that does not answer times out with a clear error', async () => {
      server.upstream.expect({ method: 'GET', path: '/repos/octocat/slow' }, { hang: true });
      server.upstream.expect({ method: 'GET', path: '/repos/octocat/slow' }, { hang: true });

      const result = await call('get_repository', { owner: 'octocat', repo: 'slow' });

      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(
        'GitHub did not answer GET /repos/octocat/slow in time (2 attempts)',
      );
    });

    test('a response of the wrong shape is reported, not crashed on', async () => {
      server.upstream.expect(
        { method: 'GET', path: '/repos/octocat/odd' },
        { json: { full_name: 42 } },
      );

      const result = await call('get_repository', { owner: 'octocat', repo: 'odd' });

      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(
        /GitHub answered GET \/repos\/octocat\/odd with a response this server does not understand/,
      );
    });

    test('owner names that would change the URL path are refused', async () => {
      const result = await call('get_repository', { owner: '..', repo: 'user' });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/owner/);
    });
  });

  test('stderr carries request logs but never the token', () => {
    const stderr = server.child.stderr();
    expect(stderr).toContain('"msg":"upstream request failed"');
    expect(stderr).toContain('[REDACTED]');
    expect(stderr).not.toContain(TOKEN);
  });
});
