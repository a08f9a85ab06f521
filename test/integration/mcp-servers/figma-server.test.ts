// The Figma MCP server over stdio against a fake Figma REST v1: every tool's
// request and result, tree trimming, list windows, error mapping (Figma's 403
// for bad tokens, 404, 429 with Retry-After), and that the token never leaks.
import { describe, expect, test } from '@jest/globals';
import { textOf } from '../../support/mcp-child.js';
import { useServerUnderTest } from '../../support/server-under-test.js';

const TOKEN = 'figd_TestPersonalAccessToken_0123456789';
const FILE_KEY = 'hCz3YQj4XkZ1a2b3c4d5e6';

const frame = (id: string, name: string, children: unknown[] = []) => ({
  id,
  name,
  type: 'FRAME',
  absoluteBoundingBox: { x: 0, y: 0, width: 1440, height: 900 },
  children,
});
const text = (id: string, characters: string) => ({
  id,
  name: characters.slice(0, 10),
  type: 'TEXT',
  characters,
  absoluteBoundingBox: { x: 0, y: 0, width: 200, height: 24 },
});

/** A document as GET /v1/files/:key?depth=... returns it. */
const file = {
  name: 'Checkout redesign',
  role: 'editor',
  lastModified: '2024-05-01T10:00:00Z',
  editorType: 'figma',
  thumbnailUrl: 'https://s3-alpha.figma.com/thumbnails/abc',
  version: '5123456789',
  schemaVersion: 0,
  document: {
    id: '0:0',
    name: 'Document',
    type: 'DOCUMENT',
    children: [
      {
        id: '0:1',
        name: 'Page 1',
        type: 'CANVAS',
        backgroundColor: { r: 1, g: 1, b: 1, a: 1 },
        children: [
          frame('1:2', 'Cart', [text('1:3', 'Your cart'), text('1:4', 'Total')]),
          frame('1:5', 'Payment'),
          frame('1:6', 'Done'),
        ],
      },
      { id: '0:2', name: 'Archive', type: 'CANVAS', children: [frame('2:1', 'Old cart')] },
    ],
  },
  components: { '1:9': { key: 'c0ffee', name: 'Button/Primary', description: 'Main CTA' } },
  componentSets: {},
  styles: { '1:10': { key: 'beef', name: 'Brand/Blue', styleType: 'FILL', description: '' } },
};

describe('Figma MCP server', () => {
  const server = useServerUnderTest({
    server: 'figma',
    key: TOKEN,
    // The seeded template says v2; the server keeps to /v1, where these endpoints live.
    config: { api_version: 'v2', max_retries: 1 },
    upstreamHeaders: { 'x-figma-token': TOKEN },
  });
  const { call } = server;

  test('lists its nine tools with annotations', async () => {
    const { tools } = await server.child.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        'get_file',
        'get_file_nodes',
        'list_comments',
        'list_file_components',
        'list_file_styles',
        'list_project_files',
        'list_team_projects',
        'post_comment',
        'render_images',
      ].sort(),
    );
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('get_file')?.annotations?.readOnlyHint).toBe(true);
    expect(byName.get('post_comment')?.annotations).toMatchObject({
      readOnlyHint: false,
      idempotentHint: false,
    });
  });

  test('get_file accepts a file URL and returns a tree trimmed to depth and node budget', async () => {
    server.upstream.expect(
      { method: 'GET', path: `/v1/files/${FILE_KEY}`, query: { depth: '2' } },
      { json: file },
    );

    const result = await call('get_file', {
      file_key: `https://www.figma.com/design/${FILE_KEY}/Checkout-redesign?node-id=1-2`,
      depth: 2,
      max_nodes: 5,
    });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({
      name: 'Checkout redesign',
      file_key: FILE_KEY,
      last_modified: '2024-05-01T10:00:00Z',
      version: '5123456789',
      editor_type: 'figma',
      role: 'editor',
      thumbnail_url: 'https://s3-alpha.figma.com/thumbnails/abc',
      document: {
        id: '0:0',
        name: 'Document',
        type: 'DOCUMENT',
        child_count: 2,
        children: [
          {
            id: '0:1',
            name: 'Page 1',
            type: 'CANVAS',
            child_count: 3,
            children: [
              { id: '1:2', name: 'Cart', type: 'FRAME', child_count: 2, width: 1440, height: 900 },
              {
                id: '1:5',
                name: 'Payment',
                type: 'FRAME',
                child_count: 0,
                width: 1440,
                height: 900,
              },
            ],
          },
          { id: '0:2', name: 'Archive', type: 'CANVAS', child_count: 1, children: [] },
        ],
      },
      node_count: 5,
      // Beyond the budget: frame 1:6 and 2:1; beyond the depth: the two texts of 1:2.
      omitted_nodes: 4,
      components: [{ node_id: '1:9', key: 'c0ffee', name: 'Button/Primary' }],
      styles: [{ node_id: '1:10', key: 'beef', name: 'Brand/Blue', style_type: 'FILL' }],
      note: '4 deeper or further node(s) omitted; raise depth or max_nodes, or read a subtree with get_file_nodes.',
    });
  });

  test('get_file refuses something that is neither a key nor a Figma URL', async () => {
    const result = await call('get_file', { file_key: 'https://example.com/not-figma' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('file_key must be a Figma file key');
  });

  test('get_file_nodes takes URL-style ids and marks missing nodes', async () => {
    server.upstream.expect(
      { method: 'GET', path: `/v1/files/${FILE_KEY}/nodes`, query: { ids: '1:2,9:9', depth: '3' } },
      {
        json: {
          name: 'Checkout redesign',
          lastModified: '2024-05-01T10:00:00Z',
          thumbnailUrl: 'https://s3-alpha.figma.com/thumbnails/abc',
          version: '5123456789',
          role: 'editor',
          editorType: 'figma',
          nodes: {
            '1:2': {
              document: frame('1:2', 'Cart', [
                text('1:3', 'Your cart'),
                text('1:4', `Total ${'9'.repeat(300)}`),
              ]),
              components: {},
              schemaVersion: 0,
              styles: {},
            },
            '9:9': null,
          },
        },
      },
    );

    const result = await call('get_file_nodes', { file_key: FILE_KEY, node_ids: ['1-2', '9:9'] });

    const content = result.structuredContent as {
      nodes: {
        node_id: string;
        found: boolean;
        document: { children?: { text?: string }[] } | null;
      }[];
    };
    expect(content.nodes.map((n) => [n.node_id, n.found])).toEqual([
      ['1:2', true],
      ['9:9', false],
    ]);
    expect(content.nodes[0]?.document?.children?.[0]).toEqual({
      id: '1:3',
      name: 'Your cart',
      type: 'TEXT',
      child_count: 0,
      width: 200,
      height: 24,
      text: 'Your cart',
    });
    // Long texts are cut to 200 characters and marked.
    expect(content.nodes[0]?.document?.children?.[1]?.text).toHaveLength(201);
    expect(content.nodes[1]?.document).toBeNull();
  });

  test('render_images asks for the format and scale and returns one URL per node', async () => {
    server.upstream.expect(
      {
        method: 'GET',
        path: `/v1/images/${FILE_KEY}`,
        query: { ids: '1:2,1:5', format: 'svg', scale: '2' },
      },
      {
        json: {
          err: null,
          images: {
            '1:2': 'https://figma-alpha-api.s3.us-west-2.amazonaws.com/images/a.svg',
            '1:5': null,
          },
          status: 200,
        },
      },
    );

    const result = await call('render_images', {
      file_key: FILE_KEY,
      node_ids: ['1:2', '1:5'],
      format: 'svg',
      scale: 2,
    });

    expect(result.structuredContent).toEqual({
      format: 'svg',
      scale: 2,
      images: [
        { node_id: '1:2', url: 'https://figma-alpha-api.s3.us-west-2.amazonaws.com/images/a.svg' },
        { node_id: '1:5', url: null },
      ],
    });
  });

  test('render_images reports a render error', async () => {
    server.upstream.expect(
      {
        method: 'GET',
        path: `/v1/images/${FILE_KEY}`,
        query: { ids: '1:2', format: 'png', scale: '1' },
      },
      { json: { err: 'Render timeout', images: {} } },
    );

    const result = await call('render_images', { file_key: FILE_KEY, node_ids: ['1:2'] });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Figma could not render the nodes: Render timeout.');
  });

  const comments = [
    {
      id: '101',
      file_key: FILE_KEY,
      parent_id: '',
      user: { handle: 'ana', img_url: 'https://x/a.png', id: '1' },
      created_at: '2024-05-01T10:00:00Z',
      resolved_at: null,
      message: 'Make the **total** bolder',
      client_meta: { node_id: '1:4', node_offset: { x: 10, y: 5 } },
      order_id: '3',
      reactions: [],
    },
    {
      id: '102',
      file_key: FILE_KEY,
      parent_id: '101',
      user: { handle: 'ben', img_url: 'https://x/b.png', id: '2' },
      created_at: '2024-05-01T11:00:00Z',
      resolved_at: null,
      message: 'Done',
      client_meta: null,
      order_id: null,
      reactions: [],
    },
    {
      id: '103',
      file_key: FILE_KEY,
      parent_id: '',
      user: { handle: 'ana', img_url: 'https://x/a.png', id: '1' },
      created_at: '2024-04-01T10:00:00Z',
      resolved_at: '2024-04-02T10:00:00Z',
      message: 'Old note',
      client_meta: { x: 100, y: 200 },
      order_id: '1',
      reactions: [],
    },
  ];

  test('list_comments returns a window of comments in Markdown with a next offset', async () => {
    server.upstream.expect(
      { method: 'GET', path: `/v1/files/${FILE_KEY}/comments`, query: { as_md: 'true' } },
      { json: { comments } },
    );

    const result = await call('list_comments', { file_key: FILE_KEY, limit: 1 });

    expect(result.structuredContent).toEqual({
      comments: [
        {
          id: '101',
          parent_id: null,
          author: 'ana',
          message: 'Make the **total** bolder',
          created_at: '2024-05-01T10:00:00Z',
          resolved_at: null,
          node_id: '1:4',
        },
      ],
      total: 3,
      next_offset: 1,
    });
  });

  test('list_comments can leave out resolved threads and reach the last window', async () => {
    server.upstream.expect(
      { method: 'GET', path: `/v1/files/${FILE_KEY}/comments`, query: { as_md: 'true' } },
      { json: { comments } },
    );

    const result = await call('list_comments', {
      file_key: FILE_KEY,
      include_resolved: false,
      offset: 1,
    });

    expect(result.structuredContent).toMatchObject({
      comments: [{ id: '102', parent_id: '101', author: 'ben', node_id: null }],
      total: 2,
      next_offset: null,
    });
  });

  test('post_comment pins a new comment to a node', async () => {
    server.upstream.expect(
      {
        method: 'POST',
        path: `/v1/files/${FILE_KEY}/comments`,
        json: {
          message: 'Check spacing',
          client_meta: { node_id: '1:2', node_offset: { x: 12, y: 0 } },
        },
      },
      {
        json: {
          id: '104',
          file_key: FILE_KEY,
          parent_id: '',
          user: { handle: 'me', img_url: '', id: '9' },
          created_at: '2024-05-02T10:00:00Z',
          resolved_at: null,
          message: 'Check spacing',
          client_meta: { node_id: '1:2', node_offset: { x: 12, y: 0 } },
          order_id: '4',
        },
      },
    );

    const result = await call('post_comment', {
      file_key: FILE_KEY,
      message: 'Check spacing',
      node_id: '1-2',
      x: 12,
    });

    expect(result.structuredContent).toEqual({
      id: '104',
      parent_id: null,
      author: 'me',
      message: 'Check spacing',
      created_at: '2024-05-02T10:00:00Z',
      resolved_at: null,
      node_id: '1:2',
    });
  });

  test('post_comment replies to a comment', async () => {
    server.upstream.expect(
      {
        method: 'POST',
        path: `/v1/files/${FILE_KEY}/comments`,
        json: { message: 'Agreed', comment_id: '101' },
      },
      {
        json: {
          id: '105',
          parent_id: '101',
          user: { handle: 'me' },
          created_at: '2024-05-02T11:00:00Z',
          resolved_at: null,
          message: 'Agreed',
        },
      },
    );

    const result = await call('post_comment', {
      file_key: FILE_KEY,
      message: 'Agreed',
      reply_to_comment_id: '101',
    });

    expect(result.structuredContent).toMatchObject({ id: '105', parent_id: '101' });
  });

  test('post_comment refuses a pinned reply', async () => {
    const result = await call('post_comment', {
      file_key: FILE_KEY,
      message: 'x',
      reply_to_comment_id: '101',
      node_id: '1:2',
    });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('A reply cannot be pinned');
  });

  test('list_team_projects lists the projects', async () => {
    server.upstream.expect(
      { method: 'GET', path: '/v1/teams/1234567890/projects' },
      {
        json: {
          name: 'Design team',
          projects: [
            { id: '4242', name: 'Checkout' },
            { id: 4243, name: 'Brand' },
          ],
        },
      },
    );

    const result = await call('list_team_projects', { team_id: '1234567890' });

    expect(result.structuredContent).toEqual({
      team_name: 'Design team',
      projects: [
        { id: '4242', name: 'Checkout' },
        { id: '4243', name: 'Brand' },
      ],
    });
  });

  test('list_project_files pages through the files', async () => {
    const files = ['A', 'B', 'C'].map((name, i) => ({
      key: `key${name}0000000`,
      name: `File ${name}`,
      thumbnail_url: `https://s3-alpha.figma.com/thumbnails/${i}`,
      last_modified: '2024-05-01T10:00:00Z',
    }));
    server.upstream.expect(
      { method: 'GET', path: '/v1/projects/4242/files' },
      { json: { name: 'Checkout', files } },
    );

    const result = await call('list_project_files', { project_id: '4242', limit: 2, offset: 1 });

    expect(result.structuredContent).toEqual({
      project_name: 'Checkout',
      files: [
        {
          key: 'keyB0000000',
          name: 'File B',
          last_modified: '2024-05-01T10:00:00Z',
          thumbnail_url: 'https://s3-alpha.figma.com/thumbnails/1',
        },
        {
          key: 'keyC0000000',
          name: 'File C',
          last_modified: '2024-05-01T10:00:00Z',
          thumbnail_url: 'https://s3-alpha.figma.com/thumbnails/2',
        },
      ],
      total: 3,
      next_offset: null,
    });
  });

  test('list_file_components returns the published components', async () => {
    server.upstream.expect(
      { method: 'GET', path: `/v1/files/${FILE_KEY}/components` },
      {
        json: {
          status: 200,
          error: false,
          meta: {
            components: [
              {
                key: 'c0ffee',
                file_key: FILE_KEY,
                node_id: '1:9',
                thumbnail_url: 'https://s3-alpha.figma.com/c.png',
                name: 'Button/Primary',
                description: 'Main CTA',
                created_at: '2024-01-01T00:00:00Z',
                updated_at: '2024-05-01T00:00:00Z',
                user: { handle: 'ana' },
                containing_frame: {
                  name: 'Buttons',
                  nodeId: '1:8',
                  pageId: '0:1',
                  pageName: 'Page 1',
                },
              },
            ],
          },
        },
      },
    );

    const result = await call('list_file_components', { file_key: FILE_KEY });

    expect(result.structuredContent).toEqual({
      components: [
        {
          key: 'c0ffee',
          node_id: '1:9',
          name: 'Button/Primary',
          description: 'Main CTA',
          thumbnail_url: 'https://s3-alpha.figma.com/c.png',
          updated_at: '2024-05-01T00:00:00Z',
          page: 'Page 1',
          frame: 'Buttons',
        },
      ],
      total: 1,
      next_offset: null,
    });
  });

  test('list_file_styles returns the published styles in windows', async () => {
    const styles = ['Blue', 'Red'].map((name, i) => ({
      key: `s${i}`,
      file_key: FILE_KEY,
      node_id: `1:1${i}`,
      style_type: 'FILL',
      thumbnail_url: null,
      name: `Brand/${name}`,
      description: '',
      created_at: '2024-01-01T00:00:00Z',
      updated_at: '2024-05-01T00:00:00Z',
      sort_position: String(i),
    }));
    server.upstream.expect(
      { method: 'GET', path: `/v1/files/${FILE_KEY}/styles` },
      { json: { status: 200, error: false, meta: { styles } } },
    );

    const result = await call('list_file_styles', { file_key: FILE_KEY, limit: 1 });

    expect(result.structuredContent).toEqual({
      styles: [
        {
          key: 's0',
          node_id: '1:10',
          name: 'Brand/Blue',
          description: '',
          thumbnail_url: null,
          updated_at: '2024-05-01T00:00:00Z',
          style_type: 'FILL',
        },
      ],
      total: 2,
      next_offset: 1,
    });
  });

  test('an invalid token (Figma answers 403) is reported as bad credentials', async () => {
    server.upstream.expect(
      { method: 'GET', path: '/v1/teams/1/projects' },
      { status: 403, json: { status: 403, err: 'Invalid token' } },
    );

    const result = await call('list_team_projects', { team_id: '1' });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Figma rejected the credentials (HTTP 403: Invalid token)');
  });

  test('a file the token cannot reach (404) is reported as not found', async () => {
    server.upstream.expect(
      { method: 'GET', path: '/v1/files/MissingFileKey123/comments', query: { as_md: 'true' } },
      { status: 404, json: { status: 404, err: 'Not found' } },
    );

    const result = await call('list_comments', { file_key: 'MissingFileKey123' });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain(
      'Not found on Figma (HTTP 404: Not found): GET /v1/files/MissingFileKey123/comments',
    );
  });

  test('a rate limit (429) longer than the retry window is reported with its reset and plan', async () => {
    server.upstream.expect(
      { method: 'GET', path: `/v1/files/${FILE_KEY}/styles` },
      {
        status: 429,
        json: { status: 429, err: 'Rate limit exceeded' },
        headers: {
          'retry-after': '600',
          'x-figma-rate-limit-type': 'low',
          'x-figma-plan-tier': 'starter',
        },
      },
    );

    const result = await call('list_file_styles', { file_key: FILE_KEY });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(
      /Rate limited by Figma \(HTTP 429: Rate limit exceeded\).*resets at .*\(in about 10 min\)/,
    );
    expect(textOf(result)).toContain('Figma limit type: low, plan tier: starter.');
  });

  test('a short rate limit is waited out and retried', async () => {
    server.upstream.expect(
      { method: 'GET', path: '/v1/teams/1/projects' },
      {
        status: 429,
        json: { status: 429, err: 'Rate limit exceeded' },
        headers: { 'retry-after': '0' },
      },
    );
    server.upstream.expect(
      { method: 'GET', path: '/v1/teams/1/projects' },
      { json: { name: 'T', projects: [] } },
    );

    const result = await call('list_team_projects', { team_id: '1' });

    expect(result.structuredContent).toEqual({ team_name: 'T', projects: [] });
  });

  test('stderr never carries the token', () => {
    expect(server.child.stderr()).toContain('"msg":"upstream request failed"');
    expect(server.child.stderr()).not.toContain(TOKEN);
  });
});
