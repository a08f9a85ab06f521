// The Gmail MCP server over stdio against a fake Gmail API v1 and OAuth token
// endpoint: every tool's request and result, MIME decoding and building, token
// refresh, error mapping, pagination, and that no credential ever leaks.
import { describe, expect, test } from '@jest/globals';
import type { RecordedRequest } from '../../support/fake-upstream.js';
import { textOf } from '../../support/mcp-child.js';
import { useServerUnderTest } from '../../support/server-under-test.js';

const API = '/gmail/v1/users/me';
const b64 = (text: string, encoding: BufferEncoding = 'utf8'): string =>
  Buffer.from(text, encoding).toString('base64url');

const googleError = (code: number, status: string, message: string, reason: string) => ({
  error: { code, message, errors: [{ message, domain: 'global', reason }], status },
});

const header = (name: string, value: string) => ({ name, value });

/** A message as Gmail's `format=full` returns it: mixed → alternative (plain, html) + a PDF. */
const fullMessage = {
  id: '18c2f0a1b2c3d4e5',
  threadId: '18c2f0a1b2c3d4e0',
  labelIds: ['INBOX', 'UNREAD', 'Label_7'],
  snippet: 'Café au lait at noon?',
  internalDate: '1700000000000',
  sizeEstimate: 52341,
  payload: {
    partId: '',
    mimeType: 'multipart/mixed',
    filename: '',
    headers: [
      header('From', 'Alice <alice@example.com>'),
      header('To', 'bob@example.com'),
      header('Cc', 'carol@example.com'),
      header('Subject', 'Lunch'),
      header('Date', 'Tue, 14 Nov 2023 22:13:20 +0000'),
      header('Message-ID', '<CAF=abc123@mail.gmail.com>'),
    ],
    body: { size: 0 },
    parts: [
      {
        partId: '0',
        mimeType: 'multipart/alternative',
        filename: '',
        headers: [header('Content-Type', 'multipart/alternative; boundary="b2"')],
        body: { size: 0 },
        parts: [
          {
            partId: '0.0',
            mimeType: 'text/plain',
            filename: '',
            headers: [header('Content-Type', 'text/plain; charset="ISO-8859-1"')],
            body: { size: 21, data: b64('Café au lait at noon?', 'latin1') },
          },
          {
            partId: '0.1',
            mimeType: 'text/html',
            filename: '',
            headers: [header('Content-Type', 'text/html; charset="UTF-8"')],
            body: { size: 40, data: b64('<p>Café au lait at <b>noon</b>?</p>') },
          },
        ],
      },
      {
        partId: '1',
        mimeType: 'application/pdf',
        filename: 'menu.pdf',
        headers: [header('Content-Disposition', 'attachment; filename="menu.pdf"')],
        body: { attachmentId: 'ANGjdJ8w', size: 48213 },
      },
    ],
  },
};

const htmlOnlyMessage = (id: string, html: string) => ({
  id,
  threadId: '18c2f0a1b2c3d4e0',
  labelIds: ['INBOX'],
  snippet: 'Newsletter',
  internalDate: '1700000100000',
  payload: {
    partId: '',
    mimeType: 'text/html',
    filename: '',
    headers: [
      header('From', 'news@example.com'),
      header('Subject', 'News'),
      header('Content-Type', 'text/html; charset=UTF-8'),
    ],
    body: { size: html.length, data: b64(html) },
  },
});

const labels = {
  labels: [
    {
      id: 'INBOX',
      name: 'INBOX',
      type: 'system',
      messageListVisibility: 'hide',
      labelListVisibility: 'labelShow',
    },
    { id: 'UNREAD', name: 'UNREAD', type: 'system' },
    {
      id: 'Label_7',
      name: 'Work',
      type: 'user',
      messageListVisibility: 'show',
      labelListVisibility: 'labelShow',
    },
  ],
};

/** Splits an RFC 2822 message into its header block and body. */
const splitMessage = (raw: string): { headers: string; body: string } => {
  const at = raw.indexOf('\r\n\r\n');
  return { headers: raw.slice(0, at), body: raw.slice(at + 4) };
};

describe('Gmail MCP server with an access token', () => {
  const TOKEN = 'ya29.a0AfH6SMBbare-access-token-value';
  const server = useServerUnderTest({
    server: 'gmail',
    key: TOKEN,
    config: { api_version: 'v1', max_retries: 1 },
    upstreamHeaders: { authorization: `Bearer ${TOKEN}` },
  });
  const { call } = server;

  test('lists its eight tools with annotations', async () => {
    const { tools } = await server.child.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        'create_draft',
        'get_message',
        'get_thread',
        'list_labels',
        'modify_labels',
        'search_messages',
        'send_message',
        'trash_message',
      ].sort(),
    );
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('search_messages')?.annotations?.readOnlyHint).toBe(true);
    expect(byName.get('send_message')?.annotations).toMatchObject({
      readOnlyHint: false,
      idempotentHint: false,
    });
    expect(byName.get('trash_message')?.annotations).toMatchObject({ destructiveHint: true });
  });

  test("search_messages lists a page and fetches each message's headers", async () => {
    server.upstream.expect(
      {
        method: 'GET',
        path: `${API}/messages`,
        query: {
          q: 'from:alice is:unread',
          labelIds: ['INBOX', 'IMPORTANT'],
          maxResults: '2',
          pageToken: 'page-1',
        },
      },
      {
        json: {
          messages: [
            { id: 'm1', threadId: 't1' },
            { id: 'm2', threadId: 't2' },
          ],
          nextPageToken: 'page-2',
          resultSizeEstimate: 14,
        },
      },
    );
    const metadata = { format: 'metadata', metadataHeaders: ['From', 'To', 'Subject', 'Date'] };
    for (const [id, subject] of [
      ['m1', 'Hello'],
      ['m2', 'Invoice'],
    ] as const)
      server.upstream.expect(
        { method: 'GET', path: `${API}/messages/${id}`, query: metadata },
        {
          json: {
            id,
            threadId: id.replace('m', 't'),
            labelIds: id === 'm1' ? ['INBOX', 'UNREAD'] : ['INBOX'],
            snippet: `${subject} snippet`,
            payload: {
              mimeType: 'multipart/alternative',
              headers: [
                header('From', 'alice@example.com'),
                header('To', 'me@example.com'),
                header('Subject', subject),
                header('Date', 'Tue, 14 Nov 2023 22:13:20 +0000'),
              ],
            },
          },
        },
      );

    const result = await call('search_messages', {
      query: 'from:alice is:unread',
      label_ids: ['INBOX', 'IMPORTANT'],
      max_results: 2,
      page_token: 'page-1',
    });

    expect(result.structuredContent).toEqual({
      messages: [
        {
          id: 'm1',
          thread_id: 't1',
          from: 'alice@example.com',
          to: 'me@example.com',
          subject: 'Hello',
          date: 'Tue, 14 Nov 2023 22:13:20 +0000',
          snippet: 'Hello snippet',
          label_ids: ['INBOX', 'UNREAD'],
          unread: true,
        },
        {
          id: 'm2',
          thread_id: 't2',
          from: 'alice@example.com',
          to: 'me@example.com',
          subject: 'Invoice',
          date: 'Tue, 14 Nov 2023 22:13:20 +0000',
          snippet: 'Invoice snippet',
          label_ids: ['INBOX'],
          unread: false,
        },
      ],
      next_page_token: 'page-2',
      result_size_estimate: 14,
    });
  });

  test('search_messages with no match returns an empty page', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/messages`, query: { q: 'nothing', maxResults: '10' } },
      { json: { resultSizeEstimate: 0 } },
    );

    const result = await call('search_messages', { query: 'nothing' });

    expect(result.structuredContent).toEqual({
      messages: [],
      next_page_token: null,
      result_size_estimate: 0,
    });
  });

  test('get_message decodes the plain body in its charset and lists attachments', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/messages/18c2f0a1b2c3d4e5`, query: { format: 'full' } },
      { json: fullMessage },
    );

    const result = await call('get_message', { message_id: '18c2f0a1b2c3d4e5' });

    expect(result.structuredContent).toEqual({
      id: '18c2f0a1b2c3d4e5',
      thread_id: '18c2f0a1b2c3d4e0',
      label_ids: ['INBOX', 'UNREAD', 'Label_7'],
      snippet: 'Café au lait at noon?',
      internal_date: '2023-11-14T22:13:20.000Z',
      headers: {
        from: 'Alice <alice@example.com>',
        to: 'bob@example.com',
        cc: 'carol@example.com',
        reply_to: null,
        subject: 'Lunch',
        date: 'Tue, 14 Nov 2023 22:13:20 +0000',
        message_id: '<CAF=abc123@mail.gmail.com>',
        references: null,
      },
      body: 'Café au lait at noon?',
      body_format: 'text',
      body_truncated: false,
      attachments: [
        {
          filename: 'menu.pdf',
          mime_type: 'application/pdf',
          size: 48213,
          attachment_id: 'ANGjdJ8w',
          part_id: '1',
        },
      ],
    });
  });

  test('get_message converts an HTML-only body to text and trims it', async () => {
    const html = `<html><head><style>p{}</style></head><body><p>Hello &amp; welcome</p><ul><li>One</li><li>Two</li></ul><p>${'z'.repeat(800)}</p></body></html>`;
    server.upstream.expect(
      { method: 'GET', path: `${API}/messages/h1`, query: { format: 'full' } },
      { json: htmlOnlyMessage('h1', html) },
    );

    const result = await call('get_message', { message_id: 'h1', max_body_chars: 500 });

    const message = result.structuredContent as {
      body: string;
      body_format: string;
      body_truncated: boolean;
    };
    expect(message.body_format).toBe('html_converted');
    expect(message.body_truncated).toBe(true);
    expect(message.body.startsWith('Hello & welcome\n\n- One\n- Two\n\nzzz')).toBe(true);
    expect(message.body).toMatch(
      /\n… \[body trimmed: \d+ more characters; raise max_body_chars\]$/,
    );
    expect(message.body).not.toContain('<');
  });

  test('get_thread reads every message of the conversation', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/threads/18c2f0a1b2c3d4e0`, query: { format: 'full' } },
      {
        json: {
          id: '18c2f0a1b2c3d4e0',
          historyId: '9876',
          messages: [fullMessage, htmlOnlyMessage('h2', '<p>Sounds good</p>')],
        },
      },
    );

    const result = await call('get_thread', { thread_id: '18c2f0a1b2c3d4e0' });

    const thread = result.structuredContent as {
      id: string;
      message_count: number;
      messages: { id: string; body: string }[];
    };
    expect(thread.id).toBe('18c2f0a1b2c3d4e0');
    expect(thread.message_count).toBe(2);
    expect(thread.messages.map((m) => [m.id, m.body])).toEqual([
      ['18c2f0a1b2c3d4e5', 'Café au lait at noon?'],
      ['h2', 'Sounds good'],
    ]);
  });

  test('list_labels returns ids, names and types', async () => {
    server.upstream.expect({ method: 'GET', path: `${API}/labels` }, { json: labels });

    const result = await call('list_labels');

    expect(result.structuredContent).toEqual({
      labels: [
        { id: 'INBOX', name: 'INBOX', type: 'system' },
        { id: 'UNREAD', name: 'UNREAD', type: 'system' },
        { id: 'Label_7', name: 'Work', type: 'user' },
      ],
    });
  });

  test('modify_labels resolves label names to ids', async () => {
    server.upstream.expect({ method: 'GET', path: `${API}/labels` }, { json: labels });
    server.upstream.expect(
      {
        method: 'POST',
        path: `${API}/messages/18c2f0a1b2c3d4e5/modify`,
        json: { addLabelIds: ['Label_7'], removeLabelIds: ['UNREAD', 'INBOX'] },
      },
      { json: { id: '18c2f0a1b2c3d4e5', threadId: '18c2f0a1b2c3d4e0', labelIds: ['Label_7'] } },
    );

    const result = await call('modify_labels', {
      message_id: '18c2f0a1b2c3d4e5',
      add: ['work'],
      remove: ['UNREAD', 'INBOX'],
    });

    expect(result.structuredContent).toEqual({
      id: '18c2f0a1b2c3d4e5',
      thread_id: '18c2f0a1b2c3d4e0',
      labels: [{ id: 'Label_7', name: 'Work' }],
    });
  });

  test('modify_labels refuses an unknown label before changing anything', async () => {
    server.upstream.expect({ method: 'GET', path: `${API}/labels` }, { json: labels });

    const result = await call('modify_labels', { message_id: 'm1', add: ['Holidays'] });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Unknown label "Holidays"; use list_labels');
  });

  test('create_draft saves an RFC 2822 message with encoded headers in the thread', async () => {
    let raw = '';
    server.upstream.expect(
      {
        method: 'POST',
        path: `${API}/drafts`,
        check: (request: RecordedRequest) => {
          const body = JSON.parse(request.body) as { message: { raw: string; threadId: string } };
          expect(body.message.threadId).toBe('18c2f0a1b2c3d4e0');
          raw = Buffer.from(body.message.raw, 'base64url').toString('utf8');
        },
      },
      {
        json: {
          id: 'r-123',
          message: { id: 'm-9', threadId: '18c2f0a1b2c3d4e0', labelIds: ['DRAFT'] },
        },
      },
    );

    const result = await call('create_draft', {
      to: ['Zoë Müller <zoe@example.com>', 'Bob Smith <bob@example.com>'],
      subject: 'Re: Café ☕ plans',
      body: 'See you at noon.\nZ',
      thread_id: '18c2f0a1b2c3d4e0',
      in_reply_to: '<CAF=abc123@mail.gmail.com>',
    });

    expect(result.structuredContent).toEqual({
      draft_id: 'r-123',
      message_id: 'm-9',
      thread_id: '18c2f0a1b2c3d4e0',
    });
    const { headers, body } = splitMessage(raw);
    expect(headers).toContain(
      `To: =?UTF-8?B?${Buffer.from('Zoë Müller').toString('base64')}?= <zoe@example.com>, "Bob Smith" <bob@example.com>`,
    );
    expect(headers).toContain(
      `Subject: =?UTF-8?B?${Buffer.from('Re: Café ☕ plans').toString('base64')}?=`,
    );
    expect(headers).toContain('In-Reply-To: <CAF=abc123@mail.gmail.com>');
    expect(headers).toContain('References: <CAF=abc123@mail.gmail.com>');
    expect(headers).toContain('Content-Type: text/plain; charset="UTF-8"');
    expect(headers).toContain('Content-Transfer-Encoding: base64');
    expect(Buffer.from(body.replace(/\r\n/g, ''), 'base64').toString('utf8')).toBe(
      'See you at noon.\nZ',
    );
  });

  test('send_message sends a multipart message with text and HTML', async () => {
    let raw = '';
    server.upstream.expect(
      {
        method: 'POST',
        path: `${API}/messages/send`,
        check: (request: RecordedRequest) => {
          const body = JSON.parse(request.body) as { raw: string; threadId?: string };
          expect(body.threadId).toBeUndefined();
          raw = Buffer.from(body.raw, 'base64url').toString('utf8');
        },
      },
      { json: { id: 'sent-1', threadId: 'thread-new', labelIds: ['SENT'] } },
    );

    const result = await call('send_message', {
      to: ['carol@example.com'],
      cc: ['dave@example.com'],
      subject: 'Report',
      body: 'Plain version',
      html_body: '<p>HTML version</p>',
    });

    expect(result.structuredContent).toEqual({
      id: 'sent-1',
      thread_id: 'thread-new',
      label_ids: ['SENT'],
    });
    expect(raw).toMatch(
      /^To: carol@example.com\r\nCc: dave@example.com\r\nSubject: Report\r\nMIME-Version: 1.0\r\n/,
    );
    const boundary = /boundary="([^"]+)"/.exec(raw)?.[1] ?? '';
    const parts = raw
      .split(`--${boundary}`)
      .slice(1, 3)
      .map((p) => splitMessage(p.replace(/^\r\n/, '')));
    expect(
      parts.map((p) => Buffer.from(p.body.replace(/\r\n/g, ''), 'base64').toString('utf8')),
    ).toEqual(['Plain version', '<p>HTML version</p>']);
    expect(raw.trimEnd().endsWith(`--${boundary}--`)).toBe(true);
  });

  test('send_message refuses a header injection in the subject', async () => {
    const result = await call('send_message', {
      to: ['carol@example.com'],
      subject: 'Hi\r\nBcc: everyone@example.com',
      body: 'x',
    });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/single line/);
  });

  test('send_message refuses something that is not an address', async () => {
    const result = await call('send_message', { to: ['not an address'], subject: 'x', body: 'x' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('name@example.com');
  });

  test('trash_message moves the message to the trash', async () => {
    server.upstream.expect(
      { method: 'POST', path: `${API}/messages/18c2f0a1b2c3d4e5/trash` },
      { json: { id: '18c2f0a1b2c3d4e5', threadId: '18c2f0a1b2c3d4e0', labelIds: ['TRASH'] } },
    );

    const result = await call('trash_message', { message_id: '18c2f0a1b2c3d4e5' });

    expect(result.structuredContent).toEqual({
      id: '18c2f0a1b2c3d4e5',
      thread_id: '18c2f0a1b2c3d4e0',
      label_ids: ['TRASH'],
    });
  });

  test('an expired access token (401) says how to store a refreshable key', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/labels` },
      {
        status: 401,
        json: googleError(
          401,
          'UNAUTHENTICATED',
          'Request had invalid authentication credentials.',
          'authError',
        ),
        headers: {
          'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"',
        },
      },
    );

    const result = await call('list_labels');

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain(
      'Gmail rejected the credentials (HTTP 401: Request had invalid authentication credentials.)',
    );
    expect(textOf(result)).toContain('"refresh_token","client_id","client_secret"');
  });

  test('a missing message (404) is reported as not found', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/messages/gone`, query: { format: 'full' } },
      {
        status: 404,
        json: googleError(404, 'NOT_FOUND', 'Requested entity was not found.', 'notFound'),
      },
    );

    const result = await call('get_message', { message_id: 'gone' });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain(
      `Not found on Gmail (HTTP 404: Requested entity was not found.): GET ${API}/messages/gone`,
    );
  });

  test('a missing scope (403) names the scopes the server needs', async () => {
    server.upstream.expect(
      { method: 'POST', path: `${API}/messages/m1/trash` },
      {
        status: 403,
        json: googleError(
          403,
          'PERMISSION_DENIED',
          'Request had insufficient authentication scopes.',
          'insufficientPermissions',
        ),
      },
    );

    const result = await call('trash_message', { message_id: 'm1' });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Gmail refused POST');
    expect(textOf(result)).toContain('https://www.googleapis.com/auth/gmail.modify');
  });

  test('a rate limit (429) with a long Retry-After is reported with its reset time', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/labels` },
      {
        status: 429,
        json: googleError(
          429,
          'RESOURCE_EXHAUSTED',
          'Too many concurrent requests for user.',
          'rateLimitExceeded',
        ),
        headers: { 'retry-after': '120' },
      },
    );

    const result = await call('list_labels');

    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(
      /Rate limited by Gmail \(HTTP 429: Too many concurrent requests for user\.\).*resets at \d{4}-\d\d-\d\dT[\d:]+Z \(in (about 2 min|1[12]\d s)\)/,
    );
  });

  test('a per-user rate limit (403 userRateLimitExceeded) is retried, then reported', async () => {
    for (let i = 0; i < 2; i++)
      server.upstream.expect(
        { method: 'GET', path: `${API}/labels` },
        {
          status: 403,
          json: googleError(
            403,
            'PERMISSION_DENIED',
            'User-rate limit exceeded.',
            'userRateLimitExceeded',
          ),
        },
      );

    const result = await call('list_labels');

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Rate limited by Gmail (HTTP 403: User-rate limit exceeded.)');
    expect(textOf(result)).toContain('No reset time was given');
  });

  test('stderr never carries the token', () => {
    expect(server.child.stderr()).toContain('"msg":"upstream request failed"');
    expect(server.child.stderr()).not.toContain(TOKEN);
  });
});

describe('Gmail MCP server with a refresh-token key', () => {
  const credentials = {
    refresh_token: '1//0gRefreshTokenSecretValue',
    client_id: '1234-abc.apps.googleusercontent.com',
    client_secret: 'GOCSPX-ClientSecretValue',
  };
  const FIRST = 'ya29.fresh-access-token-one';
  const SECOND = 'ya29.fresh-access-token-two';
  const secrets = [credentials.refresh_token, credentials.client_secret, FIRST, SECOND];
  const server = useServerUnderTest({
    server: 'gmail',
    key: JSON.stringify(credentials),
    config: { max_retries: 0 },
    env: (upstreamUrl) => ({ MINIMCP_OAUTH_TOKEN_URL: `${upstreamUrl}/token` }),
    secrets,
  });
  const { call } = server;
  const expectRefresh = (reply: { status?: number; json: unknown }) =>
    server.upstream.expect(
      {
        method: 'POST',
        path: '/token',
        form: { grant_type: 'refresh_token', ...credentials },
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        check: (request) => expect(request.headers.authorization).toBeUndefined(),
      },
      reply,
    );

  test('gets an access token before the first call, and redacts it from results', async () => {
    expectRefresh({ json: { access_token: FIRST, expires_in: 3599, token_type: 'Bearer' } });
    server.upstream.expect(
      { method: 'GET', path: `${API}/labels`, headers: { authorization: `Bearer ${FIRST}` } },
      // A label whose name holds the token shows that refreshed tokens are redacted too.
      { json: { labels: [{ id: 'Label_1', name: `leak ${FIRST}`, type: 'user' }] } },
    );

    const result = await call('list_labels');

    expect(result.structuredContent).toEqual({
      labels: [{ id: 'Label_1', name: 'leak [REDACTED]', type: 'user' }],
    });
  });

  test('reuses the token, and refreshes it once after a 401', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/labels`, headers: { authorization: `Bearer ${FIRST}` } },
      {
        status: 401,
        json: googleError(401, 'UNAUTHENTICATED', 'Invalid Credentials', 'authError'),
      },
    );
    expectRefresh({ json: { access_token: SECOND, expires_in: 3599, token_type: 'Bearer' } });
    server.upstream.expect(
      { method: 'GET', path: `${API}/labels`, headers: { authorization: `Bearer ${SECOND}` } },
      { json: labels },
    );

    const result = await call('list_labels');

    expect(result.isError).toBeFalsy();
    expect((result.structuredContent as { labels: unknown[] }).labels).toHaveLength(3);
  });

  test('a revoked refresh token (invalid_grant) says to authorize again', async () => {
    server.upstream.expect(
      { method: 'GET', path: `${API}/labels`, headers: { authorization: `Bearer ${SECOND}` } },
      {
        status: 401,
        json: googleError(401, 'UNAUTHENTICATED', 'Invalid Credentials', 'authError'),
      },
    );
    expectRefresh({
      status: 400,
      json: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' },
    });

    const result = await call('list_labels');

    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain(
      'Google OAuth rejected the credentials (HTTP 400: invalid_grant: Token has been expired or revoked.)',
    );
    expect(textOf(result)).toContain('authorize again');
  });

  test('stderr never carries the refresh token, client secret or access tokens', () => {
    const stderr = server.child.stderr();
    expect(stderr).toContain('refreshed the Gmail access token');
    for (const secret of secrets) expect(stderr).not.toContain(secret);
  });
});
