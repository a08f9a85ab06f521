// What the account tests share: an API over a harness database (fake agents
// that really get StopInstance calls), account mail in a temporary outbox,
// and readers for the outbox and the account's rows.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { expectProblem, startTestApi, type TestApi } from './api.js';
import { agentLikeStart, createHarness, type Harness, type TestNode } from './instance-harness.js';

export interface AccountsHarness {
  h: Harness;
  api: TestApi;
  node: TestNode;
  dataDir: string;
  close(): Promise<void>;
}

export async function startAccountsHarness(): Promise<AccountsHarness> {
  const h = await createHarness();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'minimcp-accounts-'));
  await h.downAllNodes();
  const node = await h.node({ handlers: { startInstance: agentLikeStart(h.db.owner, 'run') } });
  const api = await startTestApi({
    db: h.db,
    instances: h.service(),
    agents: h.registry.forNode,
    env: {
      MINIMCP_MAILER: 'outbox',
      MINIMCP_DATA_DIR: dataDir,
      MINIMCP_PUBLIC_API_URL: 'https://api.minimcp.test',
    },
  });
  return {
    h,
    api,
    node,
    dataDir,
    async close() {
      try {
        await api.close();
      } finally {
        try {
          await h.close();
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      }
    },
  };
}

/**
 * One harness for the test file, started before its tests and closed after;
 * its parts are read inside tests (they exist once beforeAll ran).
 */
export function accountsHarnessForFile(): Omit<AccountsHarness, 'close'> {
  let harness: AccountsHarness | undefined;
  beforeAll(async () => {
    harness = await startAccountsHarness();
  }, 60_000);
  afterAll(async () => {
    await harness?.close();
  });
  const started = (): AccountsHarness => {
    if (!harness) throw new Error('the accounts harness has not started');
    return harness;
  };
  return {
    get h() {
      return started().h;
    },
    get api() {
      return started().api;
    },
    get node() {
      return started().node;
    },
    get dataDir() {
      return started().dataDir;
    },
  };
}

/** The account's token is refused, and so is a login with its password. */
export async function expectLockedOut(
  api: TestApi,
  user: { token: string; email: string; password: string },
): Promise<void> {
  expectProblem(await api.request('GET', '/v1/me', { token: user.token }), 401, 'unauthenticated');
  expectProblem(
    await api.request('POST', '/v1/auth/token', {
      json: { email: user.email, password: user.password },
    }),
    401,
    'unauthenticated',
  );
}

const OutboxMail = z.object({
  id: z.string(),
  to: z.string(),
  subject: z.string(),
  text: z.string(),
});
export type OutboxMail = z.infer<typeof OutboxMail>;

/** Every mail in the outbox to `to`, oldest first. */
export async function mailsTo(dataDir: string, to: string): Promise<OutboxMail[]> {
  const dir = path.join(dataDir, 'outbox');
  const files = (await readdir(dir).catch(() => [] as string[])).sort();
  const mails = await Promise.all(
    files.map(async (file) =>
      OutboxMail.parse(JSON.parse(await readFile(path.join(dir, file), 'utf8'))),
    ),
  );
  return mails.filter((mail) => mail.to === to);
}

/** The verification token of the newest mail to `to`. */
export async function newestVerificationToken(dataDir: string, to: string): Promise<string> {
  const mail = (await mailsTo(dataDir, to)).at(-1);
  const token = mail ? /mmv_[A-Za-z0-9_-]{43}/.exec(mail.text)?.[0] : undefined;
  if (!token) throw new Error(`no verification mail to ${to}`);
  return token;
}

export const AccountEventDbRow = z.object({
  event_type: z.string(),
  actor: z.string(),
  actor_user_id: z.string().nullable(),
  event_data: z.record(z.string(), z.unknown()),
});

export async function accountEvents(api: TestApi, userId: string) {
  return api.db.owner.any(sql.type(AccountEventDbRow)`
    SELECT event_type, actor, actor_user_id, event_data FROM account_events
    WHERE user_id = ${userId} ORDER BY created_at, id
  `);
}
